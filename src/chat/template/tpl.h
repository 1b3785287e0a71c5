/* The template engine's insides, shared by its parts: parse.c (text to a tree), eval.c (the tree
 * rendered), value.c (values, JSON in and out, printing), builtins.c (filters, tests, methods,
 * global functions). Everything a parse or a render makes lives in one arena, freed at once; an
 * error anywhere unwinds to the entry point with longjmp (nothing else to free). */
#ifndef HAI_TPL_H
#define HAI_TPL_H

#include <setjmp.h>
#include <stdbool.h>
#include <stdint.h>

#include "template.h"

#if defined(__GNUC__) || defined(__clang__)
#define HAI_TPL_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define HAI_TPL_PRINTF(a, b)
#endif

/* ---- arena and errors ----------------------------------------------------------------------- */

typedef struct tpl_chunk tpl_chunk;
typedef struct tpl_ctx {
    tpl_chunk *chunks;
    size_t bytes, limit; /* allocated so far, and the most allowed */
    jmp_buf *fail;       /* where an error goes */
    hai_status status;
    char msg[256];
} tpl_ctx;

void *tpl_alloc(tpl_ctx *c, size_t n);
void tpl_arena_free(tpl_ctx *c);
_Noreturn void tpl_fail(tpl_ctx *c, hai_status st, int line, const char *fmt, ...) HAI_TPL_PRINTF(4, 5);

/* ---- values ------------------------------------------------------------------------------------ */

typedef struct jstr {
    size_t n;
    char s[]; /* n bytes and a NUL */
} jstr;

typedef enum {
    V_UNDEF, V_NONE, V_BOOL, V_INT, V_FLOAT, V_STR, V_ARR, V_OBJ, V_NS, V_MACRO, V_FUNC
} vtype;

typedef struct jarr jarr;
typedef struct jobj jobj;

/* Which bytes of a string are data: they came from the variables (a user's message, a tool's
 * result), not from the template. The prompt's tokenizer never makes a control token of them
 * (chat.h), so a user who types <|im_end|> cannot close their own turn. Printing and joining
 * keep the ranges exactly; a string made from a data string by a filter or method (trim, split,
 * replace, ...) is data as a whole. */
typedef struct jspan {
    size_t a, b;
} jspan;
typedef struct jspans {
    size_t n;
    jspan v[];
} jspans;
typedef struct node node;
typedef struct frame frame;

typedef struct jv {
    uint8_t t;
    bool tuple; /* an array written as a tuple (printed the same; kept for fidelity) */
    union {
        bool b;
        int64_t i;
        double f;
        jstr *s;
        jarr *a;
        jobj *o;      /* V_OBJ and V_NS */
        const node *m; /* V_MACRO */
        int fn;       /* V_FUNC: a global function (builtins.c) */
    };
    frame *env;         /* V_MACRO: where it was defined */
    const jspans *sp;   /* V_STR: its data bytes, or NULL */
} jv;

struct jarr {
    size_t n, cap;
    jv *v;
};
struct jobj {
    size_t n, cap;
    jstr **k;
    jv *v;
    bool data; /* from the variables: its keys are data too */
};

static inline jv jv_undef(void) { return (jv){.t = V_UNDEF}; }
static inline jv jv_none(void) { return (jv){.t = V_NONE}; }
static inline jv jv_bool(bool b) { return (jv){.t = V_BOOL, .b = b}; }
static inline jv jv_int(int64_t i) { return (jv){.t = V_INT, .i = i}; }
static inline jv jv_float(double f) { return (jv){.t = V_FLOAT, .f = f}; }
static inline jv jv_str(jstr *s) { return (jv){.t = V_STR, .s = s}; }

jstr *tpl_str(tpl_ctx *c, const char *s, size_t n);
jstr *tpl_cstr(tpl_ctx *c, const char *s);
jarr *tpl_arr(tpl_ctx *c, size_t cap);
void tpl_arr_push(tpl_ctx *c, jarr *a, jv v);
jobj *tpl_obj(tpl_ctx *c, size_t cap);
void tpl_obj_set(tpl_ctx *c, jobj *o, jstr *k, jv v);
jv *tpl_obj_get(const jobj *o, const char *k, size_t n);

bool tpl_truthy(jv v);
bool tpl_equal(jv a, jv b);
const char *tpl_type_name(jv v);

/* a growing byte buffer in the arena, bounded by HAI_TPL_MAX_OUTPUT */
typedef struct tpl_buf {
    char *p;
    size_t n, cap;
    jspan *sp; /* its data ranges, in order */
    size_t nsp, capsp;
} tpl_buf;
void tpl_put(tpl_ctx *c, tpl_buf *b, const char *s, size_t n);  /* template bytes */
void tpl_put_v(tpl_ctx *c, tpl_buf *b, jv s);                   /* a string, its data ranges kept */
void tpl_buf_mark(tpl_ctx *c, tpl_buf *b, size_t a, size_t e);  /* bytes [a, e) of b are data */
jstr *tpl_buf_str(tpl_ctx *c, const tpl_buf *b);                 /* the bytes (ranges dropped) */
jv tpl_buf_val(tpl_ctx *c, const tpl_buf *b);                    /* a string with its ranges */
jv tpl_all_data(tpl_ctx *c, jv s);                                /* s with every byte data */
bool tpl_has_data(jv v);                                         /* a string with data bytes */

/* v as the output prints it (strings as they are, none and undefined as nothing: callers skip
 * those), and as tojson writes it (indent < 0: none; separators and keys' order as given) */
void tpl_print(tpl_ctx *c, tpl_buf *b, jv v);
jstr *tpl_to_str(tpl_ctx *c, jv v);
void tpl_json(tpl_ctx *c, tpl_buf *b, jv v, int indent, int depth, const char *item_sep, const char *key_sep, bool ascii, bool sort_keys,
              bool undef_null);
jv tpl_from_cjson(tpl_ctx *c, const cJSON *j, bool data);

/* ---- the tree -------------------------------------------------------------------------------- */

typedef enum {
    /* statements */
    N_TEXT, N_OUT, N_IF, N_FOR, N_SET, N_SETBLOCK, N_MACRO, N_CALLBLOCK, N_FILTERBLOCK, N_BREAK, N_CONTINUE,
    /* expressions */
    E_LIT, E_NAME, E_LIST, E_TUPLE, E_DICT, E_ATTR, E_INDEX, E_SLICE, E_CALL, E_FILTER, E_TEST, E_NEG, E_POS, E_NOT,
    E_BIN, E_AND, E_OR, E_TERNARY
} nkind;

/* binary operators (E_BIN's op) */
enum { OP_ADD = 1, OP_SUB, OP_MUL, OP_DIV, OP_FLOORDIV, OP_MOD, OP_POW, OP_CONCAT, OP_EQ, OP_NE, OP_LT, OP_LE, OP_GT, OP_GE, OP_IN, OP_NOTIN };

typedef struct nlist {
    node **v;
    int n;
} nlist;

/* One shape for every node; what each kind uses:
 *   N_TEXT str | N_OUT a | N_IF a, body, orelse | N_FOR names (targets), a (iterable), b (filter or
 *   NULL), body, orelse | N_SET names (targets) or, with op = 1, a (namespace) . str, and b (the value)
 *   | N_SETBLOCK names[0], body | N_MACRO str, names (params), args (defaults or NULL), body
 *   | N_CALLBLOCK a (the call), names (caller's params), body | N_FILTERBLOCK a (a filter whose
 *   operand is NULL), body
 *   E_LIT lit | E_NAME str | E_LIST/E_TUPLE args | E_DICT args (keys), kw (values) | E_ATTR a . str
 *   | E_INDEX a [b] | E_SLICE a [args: start, stop, step, each may be NULL] | E_CALL a (args,
 *   kwnames = kw) | E_FILTER a | str (args, kwnames = kw) | E_TEST a is [not: op] str (args)
 *   | E_NEG/E_POS/E_NOT a | E_BIN a op b | E_AND/E_OR a b | E_TERNARY b if a else c */
struct node {
    uint8_t kind;
    int op, line;
    jstr *str;
    jv lit;
    node *a, *b, *c;
    nlist args, kw, body, orelse;
    jstr **names;
    int nnames;
};

struct hai_tpl {
    tpl_ctx ctx; /* the tree's arena */
    nlist body;
};

/* parse.c */
void tpl_parse(tpl_ctx *c, const char *src, size_t len, nlist *out);

/* ---- rendering ----------------------------------------------------------------------------- */

typedef struct frame {
    frame *up;
    jobj vars;
} frame;

typedef struct tpl_run {
    tpl_ctx *c;
    uint64_t steps;
    int depth; /* macro calls and nested loops */
    int ctl;   /* a break or continue on its way to its loop */
    int edepth; /* expressions being evaluated, inside each other */
} tpl_run;

jv tpl_eval(tpl_run *r, frame *f, const node *e);
void tpl_exec(tpl_run *r, frame *f, const nlist *body, tpl_buf *out);
jv tpl_call_macro(tpl_run *r, frame *at, jv m, const jv *args, int nargs, jstr **kwn, const jv *kwv, int nkw, int line);

/* builtins.c: a filter, test, method of a value, or global function; args and keywords evaluated */
jv tpl_filter(tpl_run *r, const char *name, jv v, const jv *args, int nargs, jstr **kwn, const jv *kwv, int nkw, int line);
bool tpl_test(tpl_run *r, const char *name, jv v, const jv *args, int nargs, int line);
bool tpl_method(tpl_run *r, jv self, const char *name, const jv *args, int nargs, jstr **kwn, const jv *kwv, int nkw, int line, jv *out);
int tpl_global_fn(const char *name); /* its id, or -1 */
jv tpl_call_global(tpl_run *r, int fn, const jv *args, int nargs, jstr **kwn, const jv *kwv, int nkw, int line);

#endif
