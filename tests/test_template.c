/* The template engine on input meant to break it: every error is a status with a message naming
 * the line and the construct; work, output and nesting are bounded (a template from a GGUF file
 * is outside input). Outputs themselves are checked against @huggingface/jinja in
 * tests/node/jinja_templates.test.mjs; the few here are the engine's own guarantees. */
#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "template.h"

/* renders src with vars (JSON text, or NULL); returns the status, *out the text or the message */
static hai_status render(const char *src, const char *vars, char **out) {
    hai_tpl *t = NULL;
    hai_error err = {0};
    *out = NULL;
    hai_status st = hai_tpl_parse(src, strlen(src), &t, &err);
    if (st == HAI_OK) {
        cJSON *v = vars ? cJSON_Parse(vars) : NULL;
        size_t n;
        st = hai_tpl_render(t, v, out, &n, &err);
        cJSON_Delete(v);
        if (st == HAI_OK && strlen(*out) != n) st = HAI_ERR_INTERNAL;
    }
    hai_tpl_free(t);
    if (st != HAI_OK) *out = strdup(err.msg);
    return st;
}

static void expect_ok(const char *src, const char *vars, const char *want) {
    char *got;
    hai_status st = render(src, vars, &got);
    CHECK_MSG(st == HAI_OK && !strcmp(got, want), "%s: got %d '%s', want '%s'", src, st, got ? got : "", want);
    free(got);
}

static void expect_err(const char *src, const char *vars, hai_status want, const char *needle) {
    char *got;
    hai_status st = render(src, vars, &got);
    CHECK_MSG(st == want && got && strstr(got, needle), "%s: got %d '%s', want %d with '%s'", src, st, got ? got : "", want, needle);
    free(got);
}

int main(void) {
    /* the engine's own basics */
    expect_ok("", NULL, "");
    expect_ok("plain\n", NULL, "plain"); /* one trailing newline dropped */
    expect_ok("{{ messages[0].content }}", "{\"messages\": [{\"content\": \"hi\"}]}", "hi");
    expect_ok("{% for m in messages %}{{ loop.index }}{{ m }}{% endfor %}", "{\"messages\": [\"a\", \"b\"]}", "1a2b");
    expect_ok("{{ x | tojson }}", "{\"x\": {\"a\": [1, 2.5, null, true, \"\\u00e9\\n\"]}}", "{\"a\": [1, 2.5, null, true, \"\xc3\xa9\\n\"]}");

    /* errors name the line and the construct */
    expect_err("a\n{% if x %}", NULL, HAI_ERR_FORMAT, "line 2: 'if' is not closed");
    expect_err("{{ 1 + }}", NULL, HAI_ERR_FORMAT, "line 1");
    expect_err("x\ny\n{{ 'abc }}", NULL, HAI_ERR_FORMAT, "line 3: a string literal is not closed");
    expect_err("{% endfor %}", NULL, HAI_ERR_FORMAT, "unexpected 'endfor'");
    expect_err("{% include 'x' %}", NULL, HAI_ERR_UNSUPPORTED, "the statement 'include'");
    expect_err("{{ x | frobnicate }}", "{\"x\": 1}", HAI_ERR_UNSUPPORTED, "unknown filter 'frobnicate'");
    expect_err("{{ x is frobnicated }}", NULL, HAI_ERR_UNSUPPORTED, "unknown test 'frobnicated'");
    expect_err("{{ nosuch(1) }}", NULL, HAI_ERR_UNSUPPORTED, "unknown function 'nosuch'");
    expect_err("\n{{ raise_exception('no tools here') }}", NULL, HAI_ERR_INVALID, "line 2: the template refused: no tools here");
    expect_err("{{ x.y + 1 }}", "{\"x\": {}}", HAI_ERR_INVALID, "undefined");
    expect_err("{% for x in 5 %}{% endfor %}", NULL, HAI_ERR_INVALID, "a for loop over a integer");
    expect_err("{{ 1 // 0 }}", NULL, HAI_ERR_INVALID, "division by zero");
    expect_err("{{ \"\\q\" }}", NULL, HAI_ERR_FORMAT, "unknown escape");

    /* bounds: work, output, nesting, recursion */
    expect_err("{% set r = range(5000) %}{% for a in r %}{% for b in r %}{% endfor %}{% endfor %}", NULL, HAI_ERR_LIMIT, "steps");
    expect_err("{% for a in range(1000) %}{% for b in range(1000) %}{% for c in range(1000) %}{% endfor %}{% endfor %}{% endfor %}", NULL,
               HAI_ERR_LIMIT, "more than"); /* the steps or the memory of a million ranges, whichever comes first */
    expect_err("{% set s = 'xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx' %}"
               "{% for a in range(1000) %}{% for b in range(1000) %}{{ s }}{% endfor %}{% endfor %}",
               NULL, HAI_ERR_LIMIT, "output");
    expect_err("{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}", NULL, HAI_ERR_LIMIT, "nested");
    expect_err("{{ range(100000000) | length }}", NULL, HAI_ERR_LIMIT, "range");
    size_t deep = 100000;
    char *nest = malloc(2 * deep + 16);
    memset(nest, '(', deep);
    strcpy(nest + deep, "1");
    memset(nest + deep + 1, ')', deep);
    nest[2 * deep + 1] = 0;
    char *wrapped = malloc(2 * deep + 16);
    snprintf(wrapped, 2 * deep + 16, "{{ %s }}", nest);
    expect_err(wrapped, NULL, HAI_ERR_LIMIT, "nested more than");
    free(nest), free(wrapped);

    /* NULL and wrong arguments */
    hai_error err = {0};
    hai_tpl *t = NULL;
    char *out = NULL;
    CHECK(hai_tpl_parse(NULL, 3, &t, &err) == HAI_ERR_INVALID);
    CHECK_MSG(hai_tpl_parse("a\0b", 3, &t, &err) == HAI_ERR_FORMAT && strstr(err.msg, "NUL") && !t, "NUL: %s", err.msg);
    CHECK(hai_tpl_parse("x", 1, NULL, &err) == HAI_ERR_INVALID);
    CHECK(hai_tpl_render(NULL, NULL, &out, NULL, &err) == HAI_ERR_INVALID);
    CHECK(hai_tpl_parse("{{ 1 }}", 7, &t, &err) == HAI_OK);
    cJSON *arr = cJSON_CreateArray();
    CHECK(hai_tpl_render(t, arr, &out, NULL, &err) == HAI_ERR_INVALID && out == NULL);
    cJSON_Delete(arr);
    hai_tpl_free(t);
    hai_tpl_free(NULL);
    return check_done("test_template");
}
