/* tests/test_encoder_sizes.c — an encoder folder whose config.json claims sizes its model.safetensors does
 * not hold is refused before anything is allocated for them (found by fuzz/thought.c: a 7 KB folder whose
 * config said vocab 1e7 x hidden 65536 made pulse_encoder_load ask for 3.5 TB, an abort under ASan), directly
 * and through the Thought-Space loader `pulse thought score --space` uses; the honest folder still loads. */
#include "pulse/encoder.h"
#include "pulse/thought.h"
#include "test.h"
#include "tiny_encoder.h"

int main(void) {
    pulse_progress_set_quiet(1);
    char dir[] = "/tmp/pulse_enc_sizesXXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    CHECK(write_model(dir, 0, 16, 2, 2, 32, 64, 7));
    pulse_encoder *e = NULL;
    CHECK_OK(pulse_encoder_load(dir, NULL, &e));
    pulse_encoder_free(e);

    char path[512];
    snprintf(path, sizeof path, "%s/config.json", dir);
    FILE *f = fopen(path, "w");
    CHECK(f != NULL);
    if (f) {
        fprintf(f,
                "{\"model_type\": \"bert\", \"vocab_size\": 10000000, \"hidden_size\": 65536, "
                "\"num_hidden_layers\": 2, \"num_attention_heads\": 1, \"intermediate_size\": 1048576, "
                "\"max_position_embeddings\": 1048576, \"type_vocab_size\": 2, \"hidden_act\": \"gelu\"}\n");
        fclose(f);
    }
    e = NULL;
    pulse_status st = pulse_encoder_load(dir, NULL, &e);
    CHECK_MSG(st == PULSE_ERR_FORMAT && e == NULL, "load -> %d: %s", (int)st, pulse_last_error());
    CHECK_MSG(strstr(pulse_last_error(), "config.json's sizes") &&
                  strstr(pulse_last_error(), "the file holds"),
              "message: %s", pulse_last_error());
    pulse_thought_space *s = NULL;
    st = pulse_thought_space_load(dir, NULL, &s);
    CHECK_MSG(st == PULSE_ERR_FORMAT && s == NULL, "space load -> %d: %s", (int)st, pulse_last_error());

    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    CHECK(system(cmd) == 0);
    return test_summary();
}
