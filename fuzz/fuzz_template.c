/* libFuzzer target: the Jinja engine (src/chat/template) on arbitrary template text, rendered with a
 * conversation that has what chat templates branch on (system, tools, tool calls and results,
 * reasoning). Invariants (abort = finding): a parse or render either succeeds with a
 * NUL-terminated text of the length it reports and data ranges in order inside it, or fails with a
 * message; nothing leaks, crashes or runs past the engine's bounds (libFuzzer's timeout catches a
 * hang). */
#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

#include "chat/template/template.h"

static cJSON *vars;

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc, (void)argv;
    vars = cJSON_Parse(
        "{\"messages\": [{\"role\": \"system\", \"content\": \"Be brief.\"}, {\"role\": \"user\", \"content\": \"Weather in Paris?\"},"
        " {\"role\": \"assistant\", \"content\": null, \"tool_calls\": [{\"id\": \"c1\", \"type\": \"function\", \"function\":"
        " {\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}}}]}, {\"role\": \"tool\", \"tool_call_id\": \"c1\","
        " \"content\": \"21C\"}, {\"role\": \"assistant\", \"content\": \"<think>\\nok\\n</think>\\n\\nIt is 21C.\"}],"
        " \"tools\": [{\"type\": \"function\", \"function\": {\"name\": \"get_weather\", \"description\": \"Weather\", \"parameters\":"
        " {\"type\": \"object\", \"properties\": {\"city\": {\"type\": \"string\", \"description\": \"City\"}}, \"required\": [\"city\"]}}}],"
        " \"add_generation_prompt\": true, \"bos_token\": \"<s>\", \"eos_token\": \"</s>\", \"enable_thinking\": false}");
    if (!vars) abort();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    hai_tpl *t = NULL;
    hai_error err = {0};
    if (hai_tpl_parse((const char *)data, size, &t, &err) != HAI_OK) {
        if (t || !err.msg[0]) abort();
        return 0;
    }
    char *out = NULL;
    size_t n = 0, (*d)[2] = NULL, nd = 0;
    static const char *const trusted[] = {"bos_token", "eos_token", NULL};
    hai_status st = hai_tpl_render_marked(t, vars, trusted, &out, &n, &d, &nd, &err);
    if (st == HAI_OK && (!out || strlen(out) > n || out[n] != 0)) abort();
    if (st != HAI_OK && (out || d || !err.msg[0])) abort();
    for (size_t i = 0; i < nd; i++) /* the data ranges: in order, inside the text, not touching */
        if (d[i][0] >= d[i][1] || d[i][1] > n || (i && d[i - 1][1] >= d[i][0])) abort();
    free(out), free(d);
    hai_tpl_free(t);
    return 0;
}
