/* tools/pulse/cmd_lm_tokenize.c — `pulse lm tokenize -m GGUF --text STR [--bos] [--special]`: the token ids
 * of STR (or of the text of --prompt-file) with the GGUF's own tokenizer, space-separated on one line (no BOS
 * unless --bos). Works on vocab-only GGUF files. --pieces prints "id<TAB>piece" lines instead; --chat formats
 * STR as one user turn first. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "pulse/tokenizer.h"

int cmd_lm_tokenize(int argc, char **argv) {
    const char *model = NULL, *text = NULL, *chat = NULL, *file = NULL;
    int bos = 0, special = 0, pieces = 0;
    const cli_opt opts[] = {
        {"--model|-m", CLI_STR, &model, "GGUF file (a vocab-only file is enough)"},
        {"--text|--prompt|-p", CLI_STR, &text, "text to tokenize"},
        {"--prompt-file", CLI_STR, &file,
         "file holding the text ('-' = stdin; one trailing newline dropped)"},
        {"--bos", CLI_FLAG, &bos, "prepend the BOS token"},
        {"--special", CLI_FLAG, &special, "parse control tokens written in the text (e.g. <|im_start|>)"},
        {"--pieces", CLI_FLAG, &pieces, "print one 'id<TAB>piece' line per token"},
        {"--chat", CLI_STR, &chat,
         "format the text as a user turn first: auto|chatml|gemma|phi3|phi4|phi4-mini|llama3|raw (the "
         "markup's special tokens are parsed, the text's never)"},
    };
    int rc = cli_parse(
        argc, argv, opts, (int)(sizeof opts / sizeof *opts),
        "usage: pulse lm tokenize -m MODEL.gguf --text STR [--bos] [--special] [--pieces] [--chat F]", NULL,
        0, NULL);
    if (rc) return rc == 1 ? 0 : 2;
    if (!model || !text == !file) {
        fprintf(stderr,
                "pulse lm tokenize: --model and one of --text or --prompt-file are required (see --help)\n");
        return 2;
    }
    char *from_file = NULL;
    size_t file_len = 0;
    if (file) {
        if (!(text = from_file = cli_read_text("lm tokenize", "--prompt-file", file, &file_len))) return 2;
        if (file_len > 0 && from_file[file_len - 1] == '\n') from_file[--file_len] = 0; /* as lm generate */
        if (file_len > 0 && from_file[file_len - 1] == '\r') from_file[--file_len] = 0;
    }
    pulse_tokenizer *tok;
    if (pulse_tokenizer_load(model, &tok) != PULSE_OK) {
        free(from_file);
        return cli_fail("lm tokenize");
    }
    if (chat) {
        int fam = pulse_chat_family_from_name(chat);
        if (fam < 0) {
            fprintf(stderr, "pulse lm tokenize: unknown chat family '%s'\n", chat);
            pulse_tokenizer_free(tok);
            free(from_file);
            return 2;
        }
    }
    size_t len = strlen(text);
    int cap = (int)(len < 1000000 ? len : 1000000) + 8, n = 0;
    int *ids = NULL;
    pulse_status st;
    if (chat) {
        /* the template's markup becomes special tokens, the text never does */
        pulse_chat_msg msg = {"user", text};
        st = pulse_chat_tokenize(tok, (pulse_chat_family)pulse_chat_family_from_name(chat), &msg, 1, 1, bos,
                                 &ids, &n);
    } else {
        ids = malloc((size_t)cap * sizeof *ids);
        st = ids ? pulse_tokenize(tok, text, len, bos, special, ids, cap, &n) : PULSE_ERR_NOMEM;
    }
    if (st == PULSE_ERR_RANGE && !chat) {
        int *bigger = realloc(ids, (size_t)n * sizeof *ids);
        if (bigger) {
            ids = bigger;
            st = pulse_tokenize(tok, text, len, bos, special, ids, n, &n);
        }
    }
    if (st != PULSE_OK) {
        free(ids);
        free(from_file);
        pulse_tokenizer_free(tok);
        return cli_fail("lm tokenize");
    }
    if (pieces) {
        char buf[512];
        for (int i = 0; i < n; i++) {
            int l = pulse_token_to_piece(tok, ids[i], 1, buf, (int)sizeof buf);
            printf("%d\t%.*s\n", ids[i], l < (int)sizeof buf ? l : (int)sizeof buf, buf);
        }
    } else {
        for (int i = 0; i < n; i++) printf(i ? " %d" : "%d", ids[i]);
        printf("\n");
    }
    free(ids);
    free(from_file);
    pulse_tokenizer_free(tok);
    return 0;
}
