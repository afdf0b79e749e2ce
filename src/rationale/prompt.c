/* rationale/prompt.c — owns the prompt pieces: the fixed Phase-1 instruction (our wording, the authors'
 * structure: analyst role, history, chosen item, task, JSON answer), the per-user text, the answer primer,
 * and their tokenization, instruction first, as a chat (the model's format, untrusted text never parsed for
 * control tokens) or a raw prompt. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pulse/rationale.h"

static const char *PHASE1_INSTRUCTION =
    "You are an analyst who studies why people choose the items they pick (products, songs, films). You "
    "will be given a user's history of items, oldest first, and the item the user chose next. Infer the "
    "user's latent preferences from the history, consider the chosen item, and write one concise rationale, "
    "under 100 words, on why the chosen item fits this user. Answer only with JSON of the form "
    "{\"rationale\": \"your rationale\"}.";

const char *pulse_phase1_instruction(void) {
    return PHASE1_INSTRUCTION;
}

const char *pulse_phase1_primer(void) {
    return "{\"rationale\": \"";
}

char *pulse_phase1_user_text(const pulse_record *rec) {
    const char *h = rec->history_text ? rec->history_text : "";
    const char *c = rec->chosen_text ? rec->chosen_text : "";
    const char *fmt = "History (oldest first):\n%s\nChosen next: %s\n";
    size_t n = strlen(fmt) + strlen(h) + strlen(c) + 1;
    char *s = malloc(n);
    if (!s) {
        pulse_set_error(PULSE_ERR_NOMEM, "prompt: out of memory");
        return NULL;
    }
    snprintf(s, n, fmt, h, c);
    return s;
}

static pulse_status append_text(const pulse_tokenizer *tok, const char *text, int **ids, int *n) {
    int *more = NULL, k = 0;
    pulse_status st = pulse_lm_tokenize_alloc(tok, text, 0, 0, &more, &k);
    if (st) return st;
    int *grown = realloc(*ids, sizeof(int) * (size_t)(*n + k + 1));
    if (!grown) {
        free(more);
        return pulse_set_error(PULSE_ERR_NOMEM, "prompt: out of memory");
    }
    memcpy(grown + *n, more, sizeof(int) * (size_t)k);
    free(more);
    *ids = grown;
    *n += k;
    return PULSE_OK;
}

pulse_status pulse_prompt_tokenize(const pulse_tokenizer *tok, int chat, const char *instruction,
                                   const char *user_text, const char *primer, int **ids, int *n) {
    *ids = NULL;
    *n = 0;
    pulse_status st;
    if (chat) {
        pulse_chat_msg msgs[2];
        int nm = 0;
        if (instruction && *instruction) msgs[nm++] = (pulse_chat_msg){"system", instruction};
        msgs[nm++] = (pulse_chat_msg){"user", user_text ? user_text : ""};
        st = pulse_chat_tokenize(tok, PULSE_CHAT_AUTO, msgs, nm, 1, -1, ids, n);
        if (!st && primer && *primer) st = append_text(tok, primer, ids, n);
    } else {
        const char *ins = instruction ? instruction : "", *ut = user_text ? user_text : "";
        const char *pr = primer ? primer : "";
        size_t len = strlen(ins) + strlen(ut) + strlen(pr) + 16;
        char *s = malloc(len);
        if (!s) return pulse_set_error(PULSE_ERR_NOMEM, "prompt: out of memory");
        snprintf(s, len, "%s%s%s\nAnswer: %s", ins, *ins ? "\n\n" : "", ut, pr);
        st = pulse_lm_tokenize_alloc(tok, s, -1, 0, ids, n);
        free(s);
    }
    if (st) {
        free(*ids);
        *ids = NULL;
        *n = 0;
    }
    return st;
}
