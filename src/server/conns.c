/* Connection bookkeeping for hai serve (see conns.h). */
#include "conns.h"

#include <netinet/in.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* A peer's address without its port; IPv4-mapped IPv6 addresses compare as the IPv4 address. */
typedef struct peer {
    int family;
    uint8_t a[16];
} peer;

struct conn {
    int fd;
    peer who;
    conn_state state;
    double since;   /* when it entered its state */
    bool closing;   /* shut down by us; libmicrohttpd has yet to see it */
    conn *prev, *next;
};

struct conns {
    conn_limits l;
    pthread_mutex_t mu;
    conn *head, *tail; /* oldest first */
};

static peer peer_of(const struct sockaddr *sa, socklen_t len) {
    peer p = {0};
    if (sa && sa->sa_family == AF_INET && len >= (socklen_t)sizeof(struct sockaddr_in)) {
        p.family = AF_INET;
        memcpy(p.a, &((const struct sockaddr_in *)sa)->sin_addr, 4);
    } else if (sa && sa->sa_family == AF_INET6 && len >= (socklen_t)sizeof(struct sockaddr_in6)) {
        const uint8_t *b = ((const struct sockaddr_in6 *)sa)->sin6_addr.s6_addr;
        static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
        if (!memcmp(b, mapped, 12)) {
            p.family = AF_INET;
            memcpy(p.a, b + 12, 4);
        } else {
            p.family = AF_INET6;
            memcpy(p.a, b, 16);
        }
    }
    return p;
}

static bool same_peer(const peer *x, const peer *y) { return x->family == y->family && !memcmp(x->a, y->a, 16); }

conns *conns_create(const conn_limits *l) {
    conns *cs = calloc(1, sizeof *cs);
    if (!cs) return NULL;
    cs->l = *l;
    if (cs->l.max_total <= 0) cs->l.max_total = 128;
    if (cs->l.max_per_addr <= 0) cs->l.max_per_addr = cs->l.max_total / 4 > 0 ? cs->l.max_total / 4 : 1;
    if (cs->l.idle_timeout_s <= 0) cs->l.idle_timeout_s = 15;
    if (cs->l.body_timeout_s <= 0) cs->l.body_timeout_s = 60;
    pthread_mutex_init(&cs->mu, NULL);
    return cs;
}

void conns_free(conns *cs) {
    if (!cs) return;
    for (conn *c = cs->head, *n; c; c = n) {
        n = c->next;
        free(c);
    }
    pthread_mutex_destroy(&cs->mu);
    free(cs);
}

/* Under mu. The entry stays until libmicrohttpd reports the connection closed, so its fd is
 * still the connection's own when we shut it down (it closes the fd after that report). */
static void close_conn(conn *c) {
    shutdown(c->fd, SHUT_RDWR);
    c->closing = true;
}

/* Under mu: the connection waiting for a request the longest (of one peer, or of any). */
static conn *oldest_waiting(conns *cs, const peer *who) {
    conn *best = NULL;
    for (conn *c = cs->head; c; c = c->next)
        if (!c->closing && c->state == CONN_WAITING && (!who || same_peer(&c->who, who)) && (!best || c->since < best->since)) best = c;
    return best;
}

bool conns_admit(conns *cs, const struct sockaddr *addr, socklen_t len, double now) {
    (void)now;
    peer who = peer_of(addr, len);
    pthread_mutex_lock(&cs->mu);
    int live = 0, mine = 0;
    for (conn *c = cs->head; c; c = c->next)
        if (!c->closing) {
            live++;
            mine += same_peer(&c->who, &who);
        }
    bool ok = true;
    while (ok && mine >= cs->l.max_per_addr) {
        conn *v = oldest_waiting(cs, &who);
        if (v) close_conn(v), mine--, live--;
        else ok = false;
    }
    while (ok && live >= cs->l.max_total) {
        conn *v = oldest_waiting(cs, NULL);
        if (v) close_conn(v), live--;
        else ok = false;
    }
    pthread_mutex_unlock(&cs->mu);
    return ok;
}

conn *conns_opened(conns *cs, int fd, const struct sockaddr *addr, socklen_t len, double now) {
    conn *c = calloc(1, sizeof *c);
    if (!c) return NULL;
    c->fd = fd;
    c->who = peer_of(addr, len);
    c->state = CONN_WAITING;
    c->since = now;
    pthread_mutex_lock(&cs->mu);
    c->prev = cs->tail;
    if (cs->tail) cs->tail->next = c;
    else cs->head = c;
    cs->tail = c;
    pthread_mutex_unlock(&cs->mu);
    return c;
}

void conns_closed(conns *cs, conn *c) {
    if (!c) return;
    pthread_mutex_lock(&cs->mu);
    if (c->prev) c->prev->next = c->next;
    else cs->head = c->next;
    if (c->next) c->next->prev = c->prev;
    else cs->tail = c->prev;
    pthread_mutex_unlock(&cs->mu);
    free(c);
}

void conns_set_state(conns *cs, conn *c, conn_state st, double now) {
    if (!c) return;
    pthread_mutex_lock(&cs->mu);
    if (c->state != st) c->since = now;
    c->state = st;
    pthread_mutex_unlock(&cs->mu);
}

int conns_sweep(conns *cs, double now) {
    int n = 0;
    pthread_mutex_lock(&cs->mu);
    for (conn *c = cs->head; c; c = c->next) {
        if (c->closing) continue;
        double limit = c->state == CONN_WAITING ? cs->l.idle_timeout_s : c->state == CONN_BODY ? cs->l.body_timeout_s : -1;
        if (limit > 0 && now - c->since > limit) {
            close_conn(c);
            n++;
        }
    }
    pthread_mutex_unlock(&cs->mu);
    return n;
}

void conns_count(conns *cs, int *live, int *waiting) {
    int l = 0, w = 0;
    pthread_mutex_lock(&cs->mu);
    for (conn *c = cs->head; c; c = c->next)
        if (!c->closing) {
            l++;
            w += c->state == CONN_WAITING;
        }
    pthread_mutex_unlock(&cs->mu);
    if (live) *live = l;
    if (waiting) *waiting = w;
}

void conns_close_waiting(conns *cs) {
    pthread_mutex_lock(&cs->mu);
    for (conn *c = cs->head; c; c = c->next)
        if (!c->closing && c->state == CONN_WAITING) close_conn(c);
    pthread_mutex_unlock(&cs->mu);
}
