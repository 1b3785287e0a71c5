/* hai-tiny, the project's own model: it loads, and answers held-out in-domain prompts (never seen
 * in training) exactly, greedy, through hai's chat format and generation; a row with "tools" (their
 * names) is asked with those tools shown to the template (definitions from TOOLS.json), and its
 * answer is the call's exact text. The first 4 held-out prompts of every task are asked; at least
 * 85% must be exact (the card reports the full set) and at least three tasks must have a correct
 * answer. Each is asked again with speculative decoding - prompt lookup, and a Q4_0 copy of the
 * model drafting - and must give the same text.
 * usage: test_tiny MODEL.gguf HELDOUT.jsonl TOOLS.json */
#include <cjson/cJSON.h>

#include <unistd.h>

#include "check.h"

#define PER_TASK 4
#define MAX_TASKS 16

static bool collect(void *user, const char *text, size_t len) {
    char *buf = user;
    size_t have = strlen(buf);
    if (have + len >= 512) return false;
    memcpy(buf + have, text, len);
    buf[have + len] = '\0';
    return true;
}

int main(int argc, char **argv) {
    if (argc < 4) {
        fprintf(stderr, "usage: test_tiny MODEL.gguf HELDOUT.jsonl TOOLS.json\n");
        return 2;
    }
    char *defs_text = NULL;
    size_t defs_len = 0;
    FILE *df = fopen(argv[3], "r");
    if (df) {
        fseek(df, 0, SEEK_END);
        long sz = ftell(df);
        rewind(df);
        if (sz > 0 && (defs_text = calloc(1, (size_t)sz + 1))) defs_len = fread(defs_text, 1, (size_t)sz, df);
        fclose(df);
    }
    cJSON *defs = defs_text ? cJSON_ParseWithLength(defs_text, defs_len) : NULL;
    free(defs_text);
    if (!CHECK_MSG(cJSON_IsArray(defs), "cannot read the tool definitions %s", argv[3])) return check_done("test_tiny");
    hai_error err = {0};
    hai_model *m = NULL;
    if (!CHECK_MSG(hai_model_load(argv[1], NULL, &m, &err) == HAI_OK, "%s", err.msg)) return check_done("test_tiny");
    FILE *f = fopen(argv[2], "r");
    if (!CHECK_MSG(f != NULL, "cannot read %s", argv[2])) return check_done("test_tiny");
    hai_context_params cp = hai_context_default_params();
    cp.n_ctx = 256;
    cp.n_threads = 1; /* a 4.75M model: one thread, no pool rounds (ctest runs tests side by side) */
    cp.n_draft = 6;
    hai_context *c = NULL, *dc = NULL;
    if (!CHECK_MSG(hai_context_create(m, &cp, &c, &err) == HAI_OK, "%s", err.msg)) return check_done("test_tiny");
    /* the draft: the model quantized to Q4_0 */
    char q4[] = "/tmp/hai-tiny-q4-XXXXXX";
    int fd = mkstemp(q4);
    hai_model *dm = NULL;
    hai_quantize_params qp = {.type = "Q4_0", .n_threads = 2};
    if (!CHECK(fd >= 0) || !CHECK_MSG(hai_quantize_model(argv[1], q4, &qp, NULL, &err) == HAI_OK && hai_model_load(q4, NULL, &dm, &err) == HAI_OK &&
                                          hai_context_create(dm, &cp, &dc, &err) == HAI_OK, "%s", err.msg))
        return check_done("test_tiny");
    close(fd), unlink(q4);
    int drafted[2] = {0}, kept[2] = {0};
    char names[MAX_TASKS][32] = {{0}};
    int asked[MAX_TASKS] = {0}, right[MAX_TASKS] = {0}, n_tasks = 0, total = 0, correct = 0;
    char line[4096];
    while (fgets(line, sizeof line, f)) {
        cJSON *j = cJSON_Parse(line);
        const cJSON *t = cJSON_GetObjectItemCaseSensitive(j, "task"), *p = cJSON_GetObjectItemCaseSensitive(j, "prompt"),
                    *a = cJSON_GetObjectItemCaseSensitive(j, "answer");
        if (!CHECK_MSG(cJSON_IsString(t) && cJSON_IsString(p) && cJSON_IsString(a), "bad line: %s", line)) {
            cJSON_Delete(j);
            continue;
        }
        int k = 0;
        while (k < n_tasks && strcmp(names[k], t->valuestring)) k++;
        if (k == n_tasks && n_tasks < MAX_TASKS) snprintf(names[n_tasks++], sizeof names[0], "%s", t->valuestring);
        if (k < MAX_TASKS && asked[k] < PER_TASK) {
            hai_chat_message msg = {.role = "user", .content = p->valuestring};
            hai_token *ids = NULL;
            size_t n = 0;
            char out[512] = "";
            hai_generate_params gp = {.max_tokens = 64, .on_text = collect, .user = out};
            hai_generate_result res;
            /* the row's tools, by name, as an app would send them */
            hai_chat_params cp2 = hai_chat_default_params();
            const cJSON *names_j = cJSON_GetObjectItemCaseSensitive(j, "tools"), *nm, *d;
            cJSON *shown = cJSON_CreateArray();
            cJSON_ArrayForEach(nm, names_j) {
                cJSON_ArrayForEach(d, defs) {
                    const cJSON *fname = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(d, "function"), "name");
                    if (cJSON_IsString(nm) && cJSON_IsString(fname) && !strcmp(nm->valuestring, fname->valuestring))
                        cJSON_AddItemToArray(shown, cJSON_Duplicate(d, true));
                }
            }
            char *tools_text = names_j ? cJSON_PrintUnformatted(shown) : NULL;
            cJSON_Delete(shown);
            CHECK_MSG(!names_j || cJSON_GetArraySize(names_j) > 0, "a row with no tools named: %s", line);
            cp2.tools = tools_text;
            bool tok_ok = CHECK(hai_chat_tokenize(m, &cp2, &msg, 1, &ids, &n, &err) == HAI_OK);
            free(tools_text);
            if (tok_ok &&
                CHECK_MSG(hai_generate(c, ids, n, &gp, &res, &err) == HAI_OK, "%s", err.msg)) {
                char *s = out;
                while (*s == ' ' || *s == '\n') s++;
                size_t l = strlen(s);
                while (l && (s[l - 1] == ' ' || s[l - 1] == '\n')) s[--l] = '\0';
                bool ok = !strcmp(s, a->valuestring);
                right[k] += ok, correct += ok;
                if (!ok) printf("  miss [%s] %s -> '%s' (want '%s')\n", t->valuestring, p->valuestring, s, a->valuestring);
                const char *plain = s;
                for (int dr = 0; dr < 2; dr++) { /* the same text with drafts: prompt lookup, the Q4_0 copy */
                    char out2[512] = "";
                    hai_generate_params gd = {.max_tokens = 64, .on_text = collect, .user = out2, .draft_lookup = dr ? 0 : 6,
                                              .draft_context = dr ? dc : NULL, .draft_tokens = 6};
                    hai_generate_result rd;
                    CHECK_MSG(hai_generate(c, ids, n, &gd, &rd, &err) == HAI_OK, "%s", err.msg);
                    s = out2;
                    while (*s == ' ' || *s == '\n') s++;
                    l = strlen(s);
                    while (l && (s[l - 1] == ' ' || s[l - 1] == '\n')) s[--l] = '\0';
                    CHECK_MSG(!strcmp(s, plain), "%s: '%s' with %s, '%s' without", p->valuestring, s, dr ? "a Q4_0 draft" : "prompt lookup", plain);
                    drafted[dr] += rd.n_drafted, kept[dr] += rd.n_accepted;
                }
            }
            hai_free(ids);
            asked[k]++, total++;
        }
        cJSON_Delete(j);
    }
    fclose(f);
    int tasks_right = 0;
    for (int k = 0; k < n_tasks; k++) {
        printf("  %-10s %d/%d\n", names[k], right[k], asked[k]);
        tasks_right += right[k] > 0;
    }
    printf("  hai-tiny: %d of %d held-out prompts exact (%.0f%%)\n", correct, total, total ? 100.0 * correct / total : 0);
    CHECK_MSG(total >= 3 * PER_TASK, "only %d held-out prompts", total);
    CHECK_MSG(correct * 100 >= 85 * total, "%d of %d exact", correct, total);
    CHECK_MSG(tasks_right >= 3, "only %d tasks answered correctly", tasks_right);
    printf("  with drafts, the same texts: prompt lookup kept %d of %d drafts, the Q4_0 copy %d of %d\n", kept[0], drafted[0], kept[1], drafted[1]);
    CHECK_MSG(kept[0] > 0 && kept[1] > 0, "a drafter kept nothing (lookup %d, Q4_0 %d)", kept[0], kept[1]);
    hai_context_free(dc);
    hai_model_free(dm);
    cJSON_Delete(defs);
    hai_context_free(c);
    hai_model_free(m);
    return check_done("test_tiny");
}
