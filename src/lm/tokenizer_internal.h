/* lm/tokenizer_internal.h — what the tokenizer files of src/lm share beyond pulse/tokenizer.h. Not a public
 * header. */
#ifndef PULSE_LM_TOKENIZER_INTERNAL_H
#define PULSE_LM_TOKENIZER_INTERNAL_H

#include "pulse/tokenizer.h"

/* pulse_tokenize, except that inside the plain spans (n_plain pairs [start, end) of byte offsets into text,
 * ascending) CONTROL and UNKNOWN tokens are never matched, even with parse_special: the message contents of a
 * chat prompt (pulse_chat_tokenize), whose text is untrusted. */
pulse_status lm_tokenize_guarded(const pulse_tokenizer *t, const char *text, size_t len, int add_bos,
                                 int parse_special, const size_t *plain, int n_plain, int *ids, int max,
                                 int *n);

#endif
