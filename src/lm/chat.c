/* src/lm/chat.c — owns chat formatting: the template families these models use (ChatML, Gemma turns, Phi-3,
 * Phi-4, Phi-4-mini, Llama-3, raw), detected from tokenizer.chat_template as llama.cpp's
 * llm_chat_detect_template does, else from the vocabulary's turn tokens. Output follows llama.cpp's
 * llm_chat_apply_template for each family, except that ChatML also inserts the default system message a
 * template writes itself (SmolLM2's "You are a helpful AI assistant named SmolLM, ..."). */
#include <stdlib.h>
#include <string.h>

#include "pulse/strbuf.h"
#include "lm/tokenizer_internal.h"

static const char *family_names[] = {"auto", "raw", "chatml", "gemma", "phi3", "phi4", "phi4-mini", "llama3"};

int pulse_chat_family_from_name(const char *name) {
    if (!name) return -1;
    for (int i = 0; i < (int)(sizeof family_names / sizeof *family_names); i++)
        if (!strcmp(name, family_names[i])) return i;
    if (!strcmp(name, "none")) return PULSE_CHAT_RAW;
    if (!strcmp(name, "smollm2") || !strcmp(name, "qwen2")) return PULSE_CHAT_CHATML;
    if (!strcmp(name, "gemma3")) return PULSE_CHAT_GEMMA;
    if (!strcmp(name, "llama-3")) return PULSE_CHAT_LLAMA3;
    return -1;
}

const char *pulse_chat_family_name(pulse_chat_family f) {
    return ((int)f >= 0 && (int)f < (int)(sizeof family_names / sizeof *family_names)) ? family_names[f]
                                                                                       : "?";
}

pulse_chat_family pulse_chat_detect_template(const char *tmpl) {
    if (!tmpl || !*tmpl) return PULSE_CHAT_RAW;
#define HAS(s) (strstr(tmpl, (s)) != NULL)
    if (HAS("<|im_sep|>")) return PULSE_CHAT_PHI4;
    if (HAS("<|im_start|>")) return PULSE_CHAT_CHATML;
    if (HAS("<start_of_turn>")) return PULSE_CHAT_GEMMA;
    if (HAS("<|start_header_id|>") && HAS("<|end_header_id|>")) return PULSE_CHAT_LLAMA3;
    if (HAS("<|assistant|>") && HAS("<|end|>")) {
        /* Phi-4-mini writes '<|' + role + '|>' + content with no newline; Phi-3 puts one after the role */
        if (HAS("'|>' + message['content']") || HAS("\"|>\" + message[\"content\"]"))
            return PULSE_CHAT_PHI4_MINI;
        return PULSE_CHAT_PHI3;
    }
#undef HAS
    return PULSE_CHAT_RAW;
}

pulse_chat_family pulse_chat_detect(const pulse_tokenizer *tok) {
    if (!tok) return PULSE_CHAT_RAW;
    const char *tmpl = pulse_tokenizer_chat_template(tok);
    if (tmpl) {
        pulse_chat_family f = pulse_chat_detect_template(tmpl);
        if (f != PULSE_CHAT_RAW) return f;
    }
#define TOK(s) (pulse_token_lookup(tok, (s), strlen(s)) >= 0)
    if (TOK("<start_of_turn>") && TOK("<end_of_turn>")) return PULSE_CHAT_GEMMA;
    if (TOK("<|im_start|>") && TOK("<|im_end|>"))
        return TOK("<|im_sep|>") ? PULSE_CHAT_PHI4 : PULSE_CHAT_CHATML;
    if (TOK("<|start_header_id|>") && TOK("<|eot_id|>")) return PULSE_CHAT_LLAMA3;
    if (TOK("<|assistant|>") && TOK("<|end|>")) return PULSE_CHAT_PHI3;
#undef TOK
    return PULSE_CHAT_RAW;
}

typedef struct {
    pulse_strbuf t;
    size_t *spans; /* when track: pairs [start, end) of the message contents written (chat_tokenize) */
    int n_spans, cap_spans, track;
} sbuf;

static void sb_put(sbuf *b, const char *s, size_t n) {
    pulse_strbuf_put(&b->t, s, n);
}
static void sb_cat(sbuf *b, const char *s) {
    pulse_strbuf_cat(&b->t, s);
}

/* untrusted text (a message content): written like sb_put, its span recorded when tracking */
static void sb_content(sbuf *b, const char *s, size_t n) {
    size_t start = b->t.n;
    sb_put(b, s, n);
    if (!b->track || b->t.oom || n == 0) return;
    if (b->n_spans == b->cap_spans) {
        int c = b->cap_spans ? 2 * b->cap_spans : 8;
        size_t *q = pulse_realloc(b->spans, sizeof(size_t) * 2 * (size_t)c);
        if (!q) {
            b->t.oom = 1;
            return;
        }
        b->spans = q;
        b->cap_spans = c;
    }
    b->spans[2 * b->n_spans] = start;
    b->spans[2 * b->n_spans + 1] = b->t.n;
    b->n_spans++;
}

/* llama.cpp's trim(): ASCII whitespace on both ends */
static void sb_trimmed(sbuf *b, const char *s) {
    size_t n = strlen(s), i = 0;
    while (i < n && (s[i] == ' ' || (s[i] >= '\t' && s[i] <= '\r'))) i++;
    while (n > i && (s[n - 1] == ' ' || (s[n - 1] >= '\t' && s[n - 1] <= '\r'))) n--;
    sb_content(b, s + i, n - i);
}

/* The default system message a ChatML template writes when the first message is not a system one:
 * the first plain literal between "<|im_start|>system\n" and "<|im_end|>" (NULL when the template has none).
 * SmolLM2 tests messages[0]['role'] != 'system'; Qwen2.5 tests == 'system' and writes its default ("You are
 * Qwen, created by Alibaba Cloud. ...") in the else branch, after a non-literal system turn. */
static char *chatml_default_system(const char *tmpl) {
    if (!tmpl || (!strstr(tmpl, "messages[0]['role'] != 'system'") &&
                  !strstr(tmpl, "messages[0]['role'] == 'system'")))
        return NULL;
    static const char *keys[] = {"<|im_start|>system\\n", "<|im_start|>system\n"};
    for (int k = 0; k < 2; k++) {
        const size_t kl = strlen(keys[k]);
        for (const char *p = strstr(tmpl, keys[k]); p; p = strstr(p + 1, keys[k])) {
            const char *b = p + kl, *e = strstr(b, "<|im_end|>");
            if (!e) break;
            if (e == b) continue;
            int plain = 1;
            for (const char *q = b; q < e && plain; q++)
                plain = !(*q == '{' || *q == '}' || *q == '\'' || *q == '"' || *q == '+' || *q == '%');
            if (!plain) continue;
            char *s = malloc((size_t)(e - b) + 1);
            if (!s) return NULL;
            memcpy(s, b, (size_t)(e - b));
            s[e - b] = 0;
            return s;
        }
    }
    return NULL;
}

/* The formatting of every family into b; with b->track the spans of message contents are recorded. */
static pulse_status chat_format(const char *tmpl, pulse_chat_family family, const pulse_chat_msg *msgs, int n,
                                int add_generation_prompt, sbuf *b_out) {
    if (n < 0 || (n > 0 && !msgs))
        return pulse_set_error(PULSE_ERR_ARG, "pulse_chat_format: invalid arguments");
    for (int i = 0; i < n; i++)
        if (!msgs[i].role || !msgs[i].content)
            return pulse_set_error(PULSE_ERR_ARG, "pulse_chat_format: message %d has no role or content", i);
    if (family == PULSE_CHAT_AUTO) family = pulse_chat_detect_template(tmpl);
    sbuf b = *b_out;
    sb_cat(&b, ""); /* an empty result is still a string */
    switch (family) {
    case PULSE_CHAT_AUTO:
    case PULSE_CHAT_RAW:
        for (int i = 0; i < n; i++) sb_content(&b, msgs[i].content, strlen(msgs[i].content));
        break;
    case PULSE_CHAT_CHATML: {
        char *sys = (n == 0 || strcmp(msgs[0].role, "system")) ? chatml_default_system(tmpl) : NULL;
        if (sys) {
            sb_cat(&b, "<|im_start|>system\n");
            sb_cat(&b, sys);
            sb_cat(&b, "<|im_end|>\n");
            free(sys);
        }
        for (int i = 0; i < n; i++) {
            sb_cat(&b, "<|im_start|>");
            sb_cat(&b, msgs[i].role);
            sb_cat(&b, "\n");
            sb_content(&b, msgs[i].content, strlen(msgs[i].content));
            sb_cat(&b, "<|im_end|>\n");
        }
        if (add_generation_prompt) sb_cat(&b, "<|im_start|>assistant\n");
        break;
    }
    case PULSE_CHAT_GEMMA: {
        sbuf sys = {0};
        for (int i = 0; i < n; i++) {
            const char *role = msgs[i].role;
            if (!strcmp(role, "system")) {
                sb_trimmed(&sys, msgs[i].content);
                continue;
            }
            if (!strcmp(role, "assistant")) role = "model";
            sb_cat(&b, "<start_of_turn>");
            sb_cat(&b, role);
            sb_cat(&b, "\n");
            if (sys.t.n && strcmp(role, "model")) {
                sb_content(&b, sys.t.s, sys.t.n);
                sb_cat(&b, "\n\n");
                sys.t.n = 0;
            }
            sb_trimmed(&b, msgs[i].content);
            sb_cat(&b, "<end_of_turn>\n");
        }
        if (sys.t.oom) b.t.oom = 1;
        free(sys.t.s);
        if (add_generation_prompt) sb_cat(&b, "<start_of_turn>model\n");
        break;
    }
    case PULSE_CHAT_PHI3:
    case PULSE_CHAT_PHI4_MINI:
        for (int i = 0; i < n; i++) {
            sb_cat(&b, "<|");
            sb_cat(&b, msgs[i].role);
            sb_cat(&b, family == PULSE_CHAT_PHI3 ? "|>\n" : "|>");
            sb_content(&b, msgs[i].content, strlen(msgs[i].content));
            sb_cat(&b, family == PULSE_CHAT_PHI3 ? "<|end|>\n" : "<|end|>");
        }
        if (add_generation_prompt)
            sb_cat(&b, family == PULSE_CHAT_PHI3 ? "<|assistant|>\n" : "<|assistant|>");
        break;
    case PULSE_CHAT_PHI4:
        for (int i = 0; i < n; i++) {
            sb_cat(&b, "<|im_start|>");
            sb_cat(&b, msgs[i].role);
            sb_cat(&b, "<|im_sep|>");
            sb_content(&b, msgs[i].content, strlen(msgs[i].content));
            sb_cat(&b, "<|im_end|>");
        }
        if (add_generation_prompt) sb_cat(&b, "<|im_start|>assistant<|im_sep|>");
        break;
    case PULSE_CHAT_LLAMA3:
        for (int i = 0; i < n; i++) {
            sb_cat(&b, "<|start_header_id|>");
            sb_cat(&b, msgs[i].role);
            sb_cat(&b, "<|end_header_id|>\n\n");
            sb_trimmed(&b, msgs[i].content);
            sb_cat(&b, "<|eot_id|>");
        }
        if (add_generation_prompt) sb_cat(&b, "<|start_header_id|>assistant<|end_header_id|>\n\n");
        break;
    default:
        *b_out = b;
        return pulse_set_error(PULSE_ERR_ARG, "pulse_chat_format: unknown chat family %d", (int)family);
    }
    *b_out = b;
    return b.t.oom ? PULSE_ERR_NOMEM : PULSE_OK;
}

pulse_status pulse_chat_format_template(const char *tmpl, pulse_chat_family family,
                                        const pulse_chat_msg *msgs, int n, int add_generation_prompt,
                                        char **out) {
    *out = NULL;
    sbuf b = {0};
    pulse_status st = chat_format(tmpl, family, msgs, n, add_generation_prompt, &b);
    if (st) {
        free(b.t.s);
        return st;
    }
    *out = b.t.s;
    return PULSE_OK;
}

pulse_status pulse_chat_tokenize(const pulse_tokenizer *tok, pulse_chat_family family,
                                 const pulse_chat_msg *msgs, int n, int add_generation_prompt, int add_bos,
                                 int **ids, int *n_ids) {
    *ids = NULL;
    *n_ids = 0;
    if (!tok) return pulse_set_error(PULSE_ERR_ARG, "pulse_chat_tokenize: no tokenizer");
    if (family == PULSE_CHAT_AUTO) family = pulse_chat_detect(tok);
    if (add_bos < 0) add_bos = pulse_tokenizer_add_bos(tok);
    sbuf b = {0};
    b.track = 1;
    pulse_status st =
        chat_format(pulse_tokenizer_chat_template(tok), family, msgs, n, add_generation_prompt, &b);
    /* the markup is parsed for special tokens, the contents never (their control-token text stays text) */
    int cap = (int)(b.t.n < 1000000 ? b.t.n : 1000000) + 8, got = 0;
    for (int attempt = 0; attempt < 2 && !st; attempt++) {
        int *buf = pulse_malloc(sizeof(int) * (size_t)cap);
        if (!buf) {
            st = PULSE_ERR_NOMEM;
            break;
        }
        st = lm_tokenize_guarded(tok, b.t.s, b.t.n, add_bos, 1, b.spans, b.n_spans, buf, cap, &got);
        if (st == PULSE_OK) {
            *ids = buf;
            *n_ids = got;
            break;
        }
        free(buf);
        if (st == PULSE_ERR_RANGE && attempt == 0) {
            cap = got + 8;
            st = PULSE_OK;
        }
    }
    free(b.t.s);
    free(b.spans);
    return st;
}

pulse_status pulse_chat_format(const pulse_tokenizer *tok, pulse_chat_family family,
                               const pulse_chat_msg *msgs, int n, int add_generation_prompt, char **out) {
    if (family == PULSE_CHAT_AUTO) {
        if (!tok) {
            *out = NULL;
            return pulse_set_error(PULSE_ERR_ARG, "pulse_chat_format: family AUTO needs a tokenizer");
        }
        family = pulse_chat_detect(tok);
    }
    return pulse_chat_format_template(tok ? pulse_tokenizer_chat_template(tok) : NULL, family, msgs, n,
                                      add_generation_prompt, out);
}
