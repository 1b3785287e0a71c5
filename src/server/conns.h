/* Who holds the server's sockets, and for how long. libmicrohttpd gives each connection a thread
 * and counts them against one limit; a client that opens connections and sends nothing (or a
 * byte a minute) would hold them all, and on loopback, where every client has the same address,
 * a per-address limit alone locks out everyone. So each connection is tracked in one of three
 * states, and:
 *   - a connection waiting for a request (idle keep-alive, or headers still arriving) is closed
 *     after idle_timeout_s; one still receiving its body after body_timeout_s;
 *   - an address may hold max_per_addr connections, all addresses max_total;
 *   - when a new connection would pass either limit, the oldest connection waiting for a request
 *     (of that address, or of any) is closed to make room: idlers cannot keep a new client out.
 *     Connections with a request in progress are never closed for room.
 * Closing means shutdown(2) of the socket: libmicrohttpd sees the end and cleans up in its own
 * thread. Pure bookkeeping besides that; the clock is passed in. */
#ifndef HAI_SERVER_CONNS_H
#define HAI_SERVER_CONNS_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

typedef struct conn_limits {
    int max_total;          /* default 128 */
    int max_per_addr;       /* default max_total / 4 */
    double idle_timeout_s;  /* waiting for a request's headers; default 15 */
    double body_timeout_s;  /* receiving a body; default 60 */
} conn_limits;

typedef enum conn_state {
    CONN_WAITING, /* for a request: idle keep-alive, or headers arriving */
    CONN_BODY,    /* headers in, body arriving */
    CONN_BUSY,    /* a request being answered */
} conn_state;

typedef struct conns conns;
typedef struct conn conn;

conns *conns_create(const conn_limits *l); /* NULL when out of memory */
void conns_free(conns *cs);

/* A new peer wants in (the accept policy). Makes room by closing idle connections when it must;
 * false when it cannot (every connection is answering a request). */
bool conns_admit(conns *cs, const struct sockaddr *addr, socklen_t len, double now);
/* A connection libmicrohttpd opened (fd) / closed. conns_opened returns NULL when out of memory
 * (the connection is then not tracked: it still has libmicrohttpd's own timeout). */
conn *conns_opened(conns *cs, int fd, const struct sockaddr *addr, socklen_t len, double now);
void conns_closed(conns *cs, conn *c);
void conns_set_state(conns *cs, conn *c, conn_state st, double now);
/* Closes the connections past their timeout; returns how many. */
int conns_sweep(conns *cs, double now);
/* Live connections (those being closed not counted), and those waiting for a request. */
void conns_count(conns *cs, int *live, int *waiting);
/* Closes every connection waiting for a request (at shutdown: nothing new will be answered). */
void conns_close_waiting(conns *cs);

#endif
