/* hai chat-format: messages (JSON on stdin) -> the prompt text of a chat format, as the model's
 * Jinja template would render it. */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static void usage(FILE *f) {
    fprintf(f,
            "usage: hai chat-format [-m MODEL.gguf | --template FILE] [options] < messages.json\n"
            "  messages.json: [{\"role\": \"system\"|\"user\"|\"assistant\", \"content\": \"...\"}, ...]\n"
            "  -m FILE             take the chat template (and BOS/EOS texts) from a GGUF model\n"
            "  --template FILE     take the chat template from a file\n"
            "  --format NAME       hai's format of a family instead of the template: chatml qwen3 llama3\n"
            "                      llama3.1 llama2 mistral mistral-tekken phi3 gemma deepseek-r1\n"
            "  --bos TEXT --eos TEXT   BOS/EOS texts for templates that write them\n"
            "  --no-gen-prompt     do not end with the assistant's turn header\n"
            "  --date TEXT         Llama 3.1+ 'Today Date' (default: the template's own)\n"
            "  --no-think          Qwen3: enable_thinking=false\n"
            "  --jinja             stdin may also be an object {\"messages\": [...], \"tools\": [...], ...} of\n"
            "                      template variables (the template is rendered either way, unless --format)\n");
}

/* --jinja: the template rendered with the messages (or the object of variables) on stdin; the
 * options fill in what the object does not set */
static int render_jinja(const hai_chat_params *p, const char *tmpl) {
    if (!tmpl) {
        fprintf(stderr, "hai chat-format: --jinja needs a template (--template or -m)\n");
        return 2;
    }
    char *input = cli_read_stream(stdin, NULL);
    cJSON *j = input ? cJSON_Parse(input) : NULL;
    free(input);
    cJSON *vars = NULL;
    if (cJSON_IsArray(j)) {
        vars = cJSON_CreateObject();
        cJSON_AddItemToObject(vars, "messages", j);
    } else if (cJSON_IsObject(j))
        vars = j;
    else {
        cJSON_Delete(j);
        fprintf(stderr, "hai chat-format: stdin must be a JSON array of messages or an object of template variables\n");
        return 1;
    }
    if (!cJSON_HasObjectItem(vars, "add_generation_prompt")) cJSON_AddBoolToObject(vars, "add_generation_prompt", p->add_generation_prompt);
    if (p->bos_token && !cJSON_HasObjectItem(vars, "bos_token")) cJSON_AddStringToObject(vars, "bos_token", p->bos_token);
    if (p->eos_token && !cJSON_HasObjectItem(vars, "eos_token")) cJSON_AddStringToObject(vars, "eos_token", p->eos_token);
    if (p->date_string && !cJSON_HasObjectItem(vars, "date_string")) cJSON_AddStringToObject(vars, "date_string", p->date_string);
    if (p->disable_thinking && !cJSON_HasObjectItem(vars, "enable_thinking")) cJSON_AddBoolToObject(vars, "enable_thinking", false);
    hai_error err = {0};
    char *out = NULL, *vj = cJSON_PrintUnformatted(vars);
    size_t len = 0;
    int rc = 1;
    if (!vj) fprintf(stderr, "hai chat-format: out of memory\n");
    else if (hai_template_render(tmpl, strlen(tmpl), vj, strlen(vj), &out, &len, &err) == HAI_OK) {
        fwrite(out, 1, len, stdout);
        rc = 0;
    } else
        cli_error("chat-format", &err);
    hai_free(out);
    cJSON_free(vj);
    cJSON_Delete(vars);
    return rc;
}

int cmd_chat_format(int argc, char **argv) {
    hai_chat_params p = hai_chat_default_params();
    const char *model = NULL, *tmpl_path = NULL;
    bool jinja = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(a, "--no-gen-prompt")) {
            p.add_generation_prompt = false;
        } else if (!strcmp(a, "--no-think")) {
            p.disable_thinking = true;
        } else if (!strcmp(a, "--jinja")) {
            jinja = true;
        } else {
            const char *v = cli_value(argc, argv, &i);
            if (!v) return 2;
            if (!strcmp(a, "-m")) model = v;
            else if (!strcmp(a, "--template")) tmpl_path = v;
            else if (!strcmp(a, "--format")) p.format = v;
            else if (!strcmp(a, "--bos")) p.bos_token = v;
            else if (!strcmp(a, "--eos")) p.eos_token = v;
            else if (!strcmp(a, "--date")) p.date_string = v;
            else {
                fprintf(stderr, "hai chat-format: unknown option '%s'\n", a);
                usage(stderr);
                return 2;
            }
        }
    }
    hai_error err = {0};
    char *tmpl = NULL;
    hai_tokenizer *t = NULL;
    if (tmpl_path && !(tmpl = cli_read_file(tmpl_path, NULL))) {
        fprintf(stderr, "hai chat-format: cannot read %s\n", tmpl_path);
        return 1;
    }
    if (model) {
        if (!(t = cli_load_tokenizer(model, NULL, &err))) {
            cli_error("chat-format", &err);
            free(tmpl);
            return 1;
        }
        if (!tmpl && hai_tokenizer_chat_template(t)) tmpl = strdup(hai_tokenizer_chat_template(t));
        static char bos[256], eos[256];
        size_t l;
        const char *s;
        hai_token b = hai_tokenizer_special(t, HAI_SPECIAL_BOS), e = hai_tokenizer_special(t, HAI_SPECIAL_EOS);
        if (!p.bos_token && b >= 0 && (s = hai_tokenizer_text(t, b, &l)) && l < sizeof bos) {
            memcpy(bos, s, l);
            p.bos_token = bos;
        }
        if (!p.eos_token && e >= 0 && (s = hai_tokenizer_text(t, e, &l)) && l < sizeof eos) {
            memcpy(eos, s, l);
            p.eos_token = eos;
        }
    }
    p.template_text = tmpl;
    if (jinja) {
        int jrc = render_jinja(&p, tmpl);
        free(tmpl);
        hai_tokenizer_free(t);
        return jrc;
    }
    if (!p.format && !tmpl) fprintf(stderr, "hai chat-format: warning: no chat template; using the chatml format\n");

    char *input = cli_read_stream(stdin, NULL);
    cJSON *j = input ? cJSON_Parse(input) : NULL;
    free(input);
    int rc = 1;
    size_t n = (size_t)cJSON_GetArraySize(j);
    hai_chat_message *msgs = calloc(n ? n : 1, sizeof *msgs);
    if (!cJSON_IsArray(j) || !msgs) {
        fprintf(stderr, "hai chat-format: stdin must be a JSON array of {\"role\", \"content\"} objects\n");
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        const cJSON *m = cJSON_GetArrayItem(j, (int)i);
        const cJSON *r = cJSON_GetObjectItemCaseSensitive(m, "role"), *c = cJSON_GetObjectItemCaseSensitive(m, "content");
        cJSON *calls = cJSON_GetObjectItemCaseSensitive(m, "tool_calls");
        const cJSON *id = cJSON_GetObjectItemCaseSensitive(m, "tool_call_id");
        if (!cJSON_IsString(r) || !(cJSON_IsString(c) || (cJSON_IsNull(c) && calls))) {
            fprintf(stderr, "hai chat-format: message %zu needs string \"role\" and \"content\" (null with tool_calls)\n", i);
            goto out;
        }
        /* as the server takes them: OpenAI's tool_calls (kept as JSON text) and tool_call_id */
        msgs[i] = (hai_chat_message){r->valuestring, cJSON_IsString(c) ? c->valuestring : "", NULL, cJSON_IsString(id) ? id->valuestring : NULL};
        if (calls && !(msgs[i].tool_calls = cJSON_PrintUnformatted(calls))) goto out;
    }
    char *text;
    size_t len;
    if (hai_chat_format(&p, msgs, n, &text, &len, &err) != HAI_OK) {
        cli_error("chat-format", &err);
        goto out;
    }
    fwrite(text, 1, len, stdout);
    hai_free(text);
    rc = 0;
out:
    for (size_t i = 0; msgs && i < n; i++) free((char *)msgs[i].tool_calls);
    free(msgs);
    cJSON_Delete(j);
    free(tmpl);
    hai_tokenizer_free(t);
    return rc;
}
