/* Chat formats: family detection on every template in ../shared/templates, hai's documented
 * behaviour where the real templates refuse (Gemma/Mistral v1 system turns), and errors.
 * (Byte-exact agreement with the real templates is tests/node/chat_templates.test.mjs.) */
#include "check.h"
#include "vocab_io.h"

static char *fmt(const char *format, const char *tmpl, const hai_chat_message *m, size_t n, bool agp) {
    hai_chat_params p = hai_chat_default_params();
    p.format = format;
    p.template_text = tmpl;
    p.bos_token = "<s>";
    p.eos_token = "</s>";
    p.add_generation_prompt = agp;
    char *out = NULL;
    size_t len;
    hai_error err = {0};
    CHECK_MSG(hai_chat_format(&p, m, n, &out, &len, &err) == HAI_OK, "%s", err.msg);
    if (out) CHECK_EQ_INT(len, strlen(out));
    return out;
}

int main(int argc, char **argv) {
    const char *shared = check_shared_dir(argc, argv);
    const struct { const char *file, *family; bool known; } det[] = {
        {"Qwen-Qwen2.5-7B-Instruct.jinja", "chatml", true},
        {"NousResearch-Hermes-2-Pro-Llama-3-8B-tool_use.jinja", "chatml", true},
        {"NousResearch-Hermes-3-Llama-3.1-8B-tool_use.jinja", "chatml", true},
        {"meta-llama-Llama-3.1-8B-Instruct.jinja", "llama3.1", true},
        {"meta-llama-Llama-3.2-3B-Instruct.jinja", "llama3.1", true},
        {"meta-llama-Llama-3.3-70B-Instruct.jinja", "llama3.1", true},
        {"microsoft-Phi-3.5-mini-instruct.jinja", "phi3", true},
        {"google-gemma-2-2b-it.jinja", "gemma", true},
        {"mistralai-Mistral-Nemo-Instruct-2407.jinja", "mistral-tekken", true},
        {"deepseek-ai-DeepSeek-R1-Distill-Llama-8B.jinja", "deepseek-r1", true},
        {"deepseek-ai-DeepSeek-R1-Distill-Qwen-32B.jinja", "deepseek-r1", true},
        {"llama-cpp-deepseek-r1.jinja", "deepseek-r1", true},
        {"CohereForAI-c4ai-command-r-plus-tool_use.jinja", "chatml", false},
    };
    for (size_t i = 0; i < sizeof det / sizeof det[0]; i++) {
        char path[8192];
        snprintf(path, sizeof path, "%s/templates/%s", shared, det[i].file);
        char *t = slurp(path, NULL);
        CHECK_MSG(t != NULL, "missing %s", path);
        if (!t) continue;
        bool known;
        const char *f = hai_chat_detect(t, &known);
        CHECK_MSG(!strcmp(f, det[i].family) && known == det[i].known, "%s: detected %s (known %d)", det[i].file, f, known);
        free(t);
    }
    bool known = true;
    CHECK(!strcmp(hai_chat_detect(NULL, &known), "chatml") && !known);

    hai_chat_message conv[] = {{.role = "system", .content = "Be brief."}, {.role = "user", .content = " Hi "}, {.role = "assistant", .content = "Hello."}, {.role = "user", .content = "Bye"}};
    /* Gemma has no system turn: hai leads the first user turn with it */
    char *g = fmt("gemma", NULL, conv, 4, true);
    if (g)
        CHECK(!strcmp(g, "<s><start_of_turn>user\nBe brief.\n\n Hi<end_of_turn>\n<start_of_turn>model\nHello.<end_of_turn>\n"
                         "<start_of_turn>user\nBye<end_of_turn>\n<start_of_turn>model\n"));
    free(g);
    /* Mistral v1 neither: the system prompt goes in front of the first user message */
    char *m = fmt("mistral", NULL, conv, 4, true);
    if (m) CHECK(!strcmp(m, "<s>[INST] Be brief.\n\n Hi  [/INST]Hello.</s>[INST] Bye [/INST]"));
    free(m);
    /* ChatML, by hand */
    char *c = fmt("chatml", NULL, conv + 1, 3, true);
    if (c)
        CHECK(!strcmp(c, "<|im_start|>user\n Hi <|im_end|>\n<|im_start|>assistant\nHello.<|im_end|>\n<|im_start|>user\nBye<|im_end|>\n"
                         "<|im_start|>assistant\n"));
    free(c);
    /* Qwen3 with thinking off */
    hai_chat_params p = hai_chat_default_params();
    p.format = "qwen3";
    p.disable_thinking = true;
    char *out;
    size_t len;
    CHECK_EQ_INT(hai_chat_format(&p, conv + 3, 1, &out, &len, NULL), HAI_OK);
    CHECK(!strcmp(out, "<|im_start|>user\nBye<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n"));
    hai_free(out);
    /* errors */
    hai_error err = {0};
    p.format = "nonsense";
    CHECK_EQ_INT(hai_chat_format(&p, conv, 4, &out, &len, &err), HAI_ERR_UNSUPPORTED);
    CHECK(strstr(err.msg, "nonsense") != NULL);
    p.format = "phi3";
    hai_chat_message tool = {.role = "tool", .content = "42"};
    CHECK_EQ_INT(hai_chat_format(&p, &tool, 1, &out, &len, &err), HAI_ERR_INVALID);
    CHECK(strstr(err.msg, "'tool'") != NULL);
    hai_chat_message bad = {.role = "user", .content = NULL};
    CHECK_EQ_INT(hai_chat_format(&p, &bad, 1, &out, &len, &err), HAI_ERR_INVALID);
    p.format = "chatml";
    CHECK_EQ_INT(hai_chat_format(&p, &tool, 1, &out, &len, &err), HAI_OK); /* chatml passes roles through */
    CHECK(!strcmp(out, "<|im_start|>tool\n42<|im_end|>\n<|im_start|>assistant\n"));
    hai_free(out);
    /* tool calls in the history: only a template writes them; they must be a JSON array */
    hai_chat_message calls[] = {{.role = "user", .content = "Timer?"},
                                {.role = "assistant", .content = "", .tool_calls = "[{\"id\":\"c\",\"type\":\"function\",\"function\":{\"name\":\"t\",\"arguments\":\"{\\\"m\\\":5}\"}}]"},
                                {.role = "tool", .content = "done", .tool_call_id = "c"}};
    CHECK_EQ_INT(hai_chat_format(&p, calls, 3, &out, &len, &err), HAI_ERR_UNSUPPORTED);
    CHECK(strstr(err.msg, "template") != NULL);
    p.format = NULL;
    p.template_text = "{% for m in messages %}{{ m.role }}:{{ m.content }}{{ '(null)' if m.content is none }}{% for c in m.tool_calls or [] %}[{{ c.function.name }} {{ c.function.arguments.m }}]{% endfor %}{{ m.tool_call_id or '' }};{% endfor %}";
    if (CHECK_EQ_INT(hai_chat_format(&p, calls, 3, &out, &len, &err), HAI_OK)) { /* arguments given as an object; content null */
        CHECK_MSG(!strcmp(out, "user:Timer?;assistant:(null)[t 5];tool:donec;"), "%s", out);
        hai_free(out);
    }
    calls[1].tool_calls = "{not json";
    CHECK_EQ_INT(hai_chat_format(&p, calls, 3, &out, &len, &err), HAI_ERR_INVALID);
    return check_done("test_chat");
}
