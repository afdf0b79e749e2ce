/* pulse/tokenizer.h — tokenizers built from GGUF metadata, and chat formatting.
 *
 * Two vocabulary kinds, as llama.cpp reads them (tokenizer.ggml.model):
 *   "gpt2"  byte-level BPE: GPT-2 byte<->unicode mapping, merge ranks from tokenizer.ggml.merges, the
 *           pre-tokenizer regexes named by tokenizer.ggml.pre ("default", "gpt2", "smollm", "llama-bpe",
 *           "qwen2", ...), implemented by hand over a Unicode category table.
 *   "llama" SentencePiece-style: score-ordered merges over "▁"-escaped text, byte fallback <0xXX>
 *           (Llama-2, Gemma); tokenizer.ggml.add_space_prefix is honoured.
 * Special and added tokens (token_type CONTROL / USER_DEFINED) are split out of the text before the
 * vocabulary's own algorithm runs: USER_DEFINED always, CONTROL and UNKNOWN only when parse_special is set.
 *
 * A tokenizer owns copies of everything it needs: the GGUF may be closed after pulse_tokenizer_from_gguf().
 * It is immutable after construction, so one tokenizer may be used from many threads at once.
 */
#ifndef PULSE_TOKENIZER_H
#define PULSE_TOKENIZER_H

#include <stddef.h>

#include "pulse/core.h"
#include "pulse/gguf.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct pulse_tokenizer pulse_tokenizer;

typedef enum {
    PULSE_VOCAB_BPE = 1, /* tokenizer.ggml.model = "gpt2" */
    PULSE_VOCAB_SPM = 2, /* tokenizer.ggml.model = "llama" */
} pulse_vocab_kind;

/* The values of tokenizer.ggml.token_type. */
typedef enum {
    PULSE_TOKEN_UNDEFINED = 0,
    PULSE_TOKEN_NORMAL = 1,
    PULSE_TOKEN_UNKNOWN = 2,
    PULSE_TOKEN_CONTROL = 3,
    PULSE_TOKEN_USER_DEFINED = 4,
    PULSE_TOKEN_UNUSED = 5,
    PULSE_TOKEN_BYTE = 6,
} pulse_token_type;

/* Build the tokenizer from a GGUF's tokenizer.* metadata (tensors are not needed: vocab-only files work). */
pulse_status pulse_tokenizer_from_gguf(const pulse_gguf *g, pulse_tokenizer **out);
/* Convenience: open PATH, build, close. */
pulse_status pulse_tokenizer_load(const char *path, pulse_tokenizer **out);
void pulse_tokenizer_free(pulse_tokenizer *tok);

pulse_vocab_kind pulse_tokenizer_kind(const pulse_tokenizer *tok);
int pulse_tokenizer_n_vocab(const pulse_tokenizer *tok);
/* The pre-tokenizer name in effect ("default" when the GGUF names none) — BPE only. */
const char *pulse_tokenizer_pre(const pulse_tokenizer *tok);
/* tokenizer.ggml.add_bos_token (default: 1 for SPM, 0 for BPE, as llama.cpp). */
int pulse_tokenizer_add_bos(const pulse_tokenizer *tok);
/* tokenizer.chat_template, or NULL when the GGUF has none. */
const char *pulse_tokenizer_chat_template(const pulse_tokenizer *tok);

/* Special ids; -1 when the vocabulary has none. EOT is found by text ("<|im_end|>", "<end_of_turn>",
 * "<|eot_id|>", "<|end|>", ...) when the metadata does not name it, as llama.cpp does. */
int pulse_token_bos(const pulse_tokenizer *tok);
int pulse_token_eos(const pulse_tokenizer *tok);
int pulse_token_eot(const pulse_tokenizer *tok);
int pulse_token_unk(const pulse_tokenizer *tok);
int pulse_token_pad(const pulse_tokenizer *tok);
/* 1 when generation should stop at this id: EOS, EOT, EOM and the end-of-generation tokens found by text. */
int pulse_token_is_eog(const pulse_tokenizer *tok, int id);
pulse_token_type pulse_token_get_type(const pulse_tokenizer *tok, int id); /* UNDEFINED when out of range */
/* The raw vocabulary text of id (not NUL-terminated; *len set), or NULL when out of range. */
const char *pulse_token_text(const pulse_tokenizer *tok, int id, size_t *len);
/* The id whose vocabulary text is exactly text[0..len), or -1. */
int pulse_token_lookup(const pulse_tokenizer *tok, const char *text, size_t len);

/* text[0..len) -> ids. add_bos: prepend BOS (when the vocabulary has one). parse_special: match CONTROL
 * tokens written in the text (e.g. "<|im_start|>"); USER_DEFINED tokens are always matched. *n receives the
 * number of ids the full tokenization has. Up to max ids are written; when *n > max the return is
 * PULSE_ERR_RANGE (call again with a larger buffer). Invalid UTF-8 never fails: it is handled as llama.cpp
 * does. */
pulse_status pulse_tokenize(const pulse_tokenizer *tok, const char *text, size_t len, int add_bos,
                            int parse_special, int *ids, int max, int *n);

/* The bytes one id stands for: byte-level decoded (BPE), "▁" -> " " and <0xXX> -> byte (SPM). CONTROL and
 * UNKNOWN ids give "" unless special is set (then their text). Writes up to cap bytes (no NUL) and returns
 * the piece's length (which may exceed cap: call again with a larger buffer), or -1 for an invalid id. */
int pulse_token_to_piece(const pulse_tokenizer *tok, int id, int special, char *buf, int cap);
/* ids -> text: concatenated pieces, NUL-terminated, malloc'ed into *out (free()); *len may be NULL.
 * detokenize(tokenize(s)) == s for text without special tokens. */
pulse_status pulse_detokenize(const pulse_tokenizer *tok, const int *ids, int n, int special, char **out,
                              size_t *len);

/* ---- chat formatting ---- */
typedef struct {
    const char *role; /* "system", "user", "assistant" */
    const char *content;
} pulse_chat_msg;

typedef enum {
    PULSE_CHAT_AUTO = 0,  /* pick from the tokenizer's chat template / vocabulary */
    PULSE_CHAT_RAW,       /* contents concatenated, no markup (how the PULSE authors prompted) */
    PULSE_CHAT_CHATML,    /* <|im_start|>role\n...<|im_end|>\n (SmolLM2, Qwen) */
    PULSE_CHAT_GEMMA,     /* <start_of_turn>user\n...<end_of_turn>\n, system merged into first user turn */
    PULSE_CHAT_PHI3,      /* <|user|>\n...<|end|>\n */
    PULSE_CHAT_PHI4,      /* <|im_start|>user<|im_sep|>...<|im_end|> */
    PULSE_CHAT_PHI4_MINI, /* <|user|>...<|end|> (Phi-4-mini's template: no newlines) */
    PULSE_CHAT_LLAMA3,    /* <|start_header_id|>user<|end_header_id|>\n\n...<|eot_id|> */
} pulse_chat_family;

/* "raw", "chatml", "gemma", "phi3", "phi4", "phi4-mini", "llama3" (and "auto") -> family; -1 if unknown. */
int pulse_chat_family_from_name(const char *name);
const char *pulse_chat_family_name(pulse_chat_family f);
/* Family of a Jinja chat template text (as llama.cpp's detection), RAW when unrecognised or NULL. */
pulse_chat_family pulse_chat_detect_template(const char *tmpl);
/* Family for a tokenizer: its tokenizer.chat_template if any, else its vocabulary's turn tokens
 * (Gemma-3 GGUFs carry no template), else RAW. */
pulse_chat_family pulse_chat_detect(const pulse_tokenizer *tok);

/* Format msgs[0..n) into *out (malloc'ed, NUL-terminated; free()). family AUTO detects from tok (tok may be
 * NULL only for an explicit family). add_generation_prompt appends the assistant turn opener. The output
 * never contains BOS. For ChatML, a default system message written in the template (SmolLM2's) is inserted
 * when the first message is not one. To get token ids, use pulse_chat_tokenize: tokenizing this text with
 * parse_special would turn control-token text inside a content into real role tokens. */
pulse_status pulse_chat_format(const pulse_tokenizer *tok, pulse_chat_family family,
                               const pulse_chat_msg *msgs, int n, int add_generation_prompt, char **out);
/* Format msgs as pulse_chat_format does and tokenize the result into *ids (malloc'ed; *n_ids of them): the
 * template's markup becomes its special tokens, the message contents are tokenized as text (CONTROL tokens
 * written in a content, e.g. "<|im_end|>" or "<start_of_turn>" in an item title, are not matched there, so
 * untrusted text cannot close or open turns; USER_DEFINED tokens are matched as in pulse_tokenize). Away from
 * such text the ids equal tokenizing the formatted text with parse_special. add_bos < 0: as the tokenizer
 * wants. */
pulse_status pulse_chat_tokenize(const pulse_tokenizer *tok, pulse_chat_family family,
                                 const pulse_chat_msg *msgs, int n, int add_generation_prompt, int add_bos,
                                 int **ids, int *n_ids);
/* The same from a chat template text instead of a tokenizer (tmpl may be NULL for an explicit family). */
pulse_status pulse_chat_format_template(const char *tmpl, pulse_chat_family family,
                                        const pulse_chat_msg *msgs, int n, int add_generation_prompt,
                                        char **out);

#ifdef __cplusplus
}
#endif
#endif
