/* hai pull NAME|URL: a model into the model store, with progress and resume; checked (size,
 * SHA-256) before it takes its name. Also where hai serve --model auto finds its models. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "hai_pull.h"

static void usage(FILE *f) {
    fprintf(f,
            "usage: hai pull NAME|URL [options]\n"
            "  NAME                a model of the catalog (its URL, size and SHA-256 from there)\n"
            "  URL                 http(s):// or file://; the file keeps the URL's last path part as its name\n"
            "  --catalog FILE      the catalog (default $HAI_CATALOG, else ~/.config/hai/catalog.json): a JSON\n"
            "                      array of {\"name\", \"url\", \"size\", \"sha256\", \"memory\"} (README: Models)\n"
            "  --dir DIR           the model store (default $HAI_MODELS, else ~/.cache/hai/models)\n"
            "  --sha256 HEX        with a URL: the SHA-256 the file must have\n"
            "  --size BYTES        with a URL: the size it must have\n"
            "An interrupted download resumes when it is run again; only a whole file that passes the checks\n"
            "takes its name (written as NAME.part until then). Prints the model's path.\n");
}

/* mkdir -p */
static bool make_dirs(const char *path) {
    char p[4096];
    if (snprintf(p, sizeof p, "%s", path) >= (int)sizeof p) return false;
    for (char *s = p + 1; *s; s++)
        if (*s == '/') {
            *s = '\0';
            if (mkdir(p, 0755) && errno != EEXIST) return false;
            *s = '/';
        }
    return !mkdir(p, 0755) || errno == EEXIST;
}

const char *cli_model_dir(const char *dir, char *buf, size_t cap) {
    if (dir) return dir;
    const char *env = getenv("HAI_MODELS"), *home = getenv("HOME");
    if (env && *env) return env;
    snprintf(buf, cap, "%s/.cache/hai/models", home && *home ? home : ".");
    return buf;
}

const char *cli_catalog_path(const char *path, char *buf, size_t cap) {
    if (path) return path;
    const char *env = getenv("HAI_CATALOG"), *home = getenv("HOME");
    if (env && *env) return env;
    snprintf(buf, cap, "%s/.config/hai/catalog.json", home && *home ? home : ".");
    return buf;
}

typedef struct bar {
    bool tty;
    double t0, last;
    int64_t last_pct;
} bar;

static void on_progress(void *user, int64_t done, int64_t total, const char *what) {
    (void)what;
    bar *b = user;
    double t = hai_time_s(), rate = (double)done / (t - b->t0 + 1e-9) / 1048576.0;
    if (b->tty) {
        if (t - b->last < 0.1 && done != total) return;
        b->last = t;
        if (total > 0) {
            double pct = 100.0 * (double)done / (double)total;
            int w = (int)(pct / 5);
            fprintf(stderr, "\r[%.*s%*s] %5.1f%%  %.1f of %.1f MiB  %.1f MiB/s ", w, "####################", 20 - w, "", pct,
                    done / 1048576.0, total / 1048576.0, rate);
        } else {
            fprintf(stderr, "\r%.1f MiB  %.1f MiB/s ", done / 1048576.0, rate);
        }
    } else if (total > 0 && done * 10 / total > b->last_pct) { /* a plain line each tenth when not on a terminal */
        b->last_pct = done * 10 / total;
        fprintf(stderr, "[%3lld%%] %.1f of %.1f MiB, %.1f MiB/s\n", (long long)(b->last_pct * 10), done / 1048576.0, total / 1048576.0, rate);
    }
}

int cli_pull_model(const hai_catalog_entry *e, const char *dir, char *path, size_t cap) {
    if (!make_dirs(dir)) {
        fprintf(stderr, "hai pull: cannot make %s (%s)\n", dir, strerror(errno));
        return 1;
    }
    if (snprintf(path, cap, "%s/%s.gguf", dir, e->name) >= (int)cap) {
        fprintf(stderr, "hai pull: the path is too long\n");
        return 1;
    }
    if (access(path, F_OK) == 0) {
        fprintf(stderr, "hai pull: %s is there already\n", path);
        return 0;
    }
    bar b = {.tty = isatty(2), .t0 = hai_time_s(), .last_pct = -1};
    hai_pull_params p = {.size = sizeof p, .url = e->url, .dest = path, .expect_size = e->size, .sha256 = e->sha256[0] ? e->sha256 : NULL,
                         .progress = on_progress, .progress_user = &b};
    hai_error err = {0};
    fprintf(stderr, "hai pull: %s from %s\n", e->name, e->url);
    hai_status st = hai_pull(&p, &err);
    if (b.tty) fputc('\n', stderr);
    if (st) {
        cli_error("pull", &err);
        return 1;
    }
    fprintf(stderr, "hai pull: %s (%.1f MiB in %.1f s%s)\n", path, e->size / 1048576.0, hai_time_s() - b.t0, p.sha256 ? ", SHA-256 checked" : "");
    return 0;
}

int cmd_pull(int argc, char **argv) {
    const char *what = NULL, *catalog = NULL, *dir = NULL, *sha = NULL;
    uint64_t size = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return 0;
        }
        if (a[0] != '-') {
            if (what) {
                fprintf(stderr, "hai pull: one model at a time\n");
                return 2;
            }
            what = a;
            continue;
        }
        if (!(v = cli_value(argc, argv, &i))) return 2;
        if (!strcmp(a, "--catalog")) catalog = v;
        else if (!strcmp(a, "--dir")) dir = v;
        else if (!strcmp(a, "--sha256")) sha = v;
        else if (!strcmp(a, "--size")) { if (!cli_parse_size(a, v, &size)) return 2; }
        else {
            fprintf(stderr, "hai pull: unknown option '%s'\n", a);
            usage(stderr);
            return 2;
        }
    }
    if (!what) {
        usage(stderr);
        return 2;
    }
    char dbuf[4096], cbuf[4096], path[4096];
    dir = cli_model_dir(dir, dbuf, sizeof dbuf);
    hai_catalog_entry e = {0};
    if (strstr(what, "://")) { /* a URL: the name is its last path part, without a query */
        const char *end = what + strcspn(what, "?#"), *slash = end;
        while (slash > what && slash[-1] != '/') slash--;
        size_t n = (size_t)(end - slash);
        if (n >= 5 && !strncmp(end - 5, ".gguf", 5)) n -= 5;
        if (!n || n >= sizeof e.name || slash[0] == '.') {
            fprintf(stderr, "hai pull: no file name in %s\n", what);
            return 2;
        }
        memcpy(e.name, slash, n);
        for (char *c = e.name; *c; c++)
            if (!hai_model_name_char(*c)) *c = '_';
        if (strlen(what) >= sizeof e.url) {
            fprintf(stderr, "hai pull: the URL is too long\n");
            return 2;
        }
        snprintf(e.url, sizeof e.url, "%s", what);
        if (sha) snprintf(e.sha256, sizeof e.sha256, "%.64s", sha);
        e.size = size;
    } else {
        hai_catalog_entry *all = NULL;
        size_t n = 0;
        hai_error err = {0};
        if (hai_catalog_load(cli_catalog_path(catalog, cbuf, sizeof cbuf), &all, &n, &err)) {
            cli_error("pull", &err);
            return 1;
        }
        size_t i = 0;
        while (i < n && strcmp(all[i].name, what)) i++;
        if (i == n) {
            fprintf(stderr, "hai pull: no model '%s' in the catalog (it has:", what);
            for (size_t k = 0; k < n; k++) fprintf(stderr, " %s", all[k].name);
            fprintf(stderr, ")\n");
            hai_free(all);
            return 1;
        }
        e = all[i];
        hai_free(all);
    }
    int rc = cli_pull_model(&e, dir, path, sizeof path);
    if (!rc) printf("%s\n", path);
    return rc;
}
