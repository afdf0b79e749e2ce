/* tests/test_rationale_extract.c — the rationale extractor on outputs as small models write them: clean JSON,
 * single-quoted pseudo-JSON, code fences, trailing chatter, a string left open at the token limit, nested
 * answers, plain prose; and the failures that must never be stored: empty, the instruction's placeholder, a
 * copy of the prompt, no content words, degenerate repetition. */
#include "test.h"

#include "pulse/rationale.h"

static const char *PROMPT =
    "History (oldest first):\n1. OPI Nail Lacquer, Simmer and Shimmer, 0.5-Fluid Ounce\n2. OPI Red Shatter "
    "Crackle Nail Polish E55 New\nChosen next: Essie Nail Polish, Ballet Slippers\n";

static void expect_ok(const char *raw, const char *want) {
    char *t = NULL;
    pulse_extract_status st = pulse_rationale_extract(raw, PROMPT, &t);
    CHECK_MSG(st == PULSE_EXTRACT_OK, "status %s for: %s", pulse_extract_status_str(st), raw);
    CHECK_MSG(t && !strcmp(t, want), "got '%s'\nwant '%s'", t ? t : "(null)", want);
    free(t);
}

static void expect_fail(const char *raw, pulse_extract_status want) {
    char *t = NULL;
    pulse_extract_status st = pulse_rationale_extract(raw, PROMPT, &t);
    CHECK_MSG(st == want, "status %s (want %s) for: %s", pulse_extract_status_str(st),
              pulse_extract_status_str(want), raw);
    CHECK(t == NULL);
    free(t);
}

int main(void) {
    const char *R = "The user keeps buying nail polish in bold shades, so a classic pale pink completes the "
                    "collection.";
    char buf[1024];
    /* clean JSON */
    snprintf(buf, sizeof buf, "{\"rationale\": \"%s\"}", R);
    expect_ok(buf, R);
    /* primed output as the job sees it: primer + continuation, closing quote and brace, then chatter */
    snprintf(buf, sizeof buf, "{\"rationale\": \"%s\"}\n\nI hope this helps! Let me know.", R);
    expect_ok(buf, R);
    /* single-quoted pseudo-JSON with an apostrophe inside */
    expect_ok("{'rationale': 'The user's history is all OPI lacquers; Essie is a similar salon brand.'}",
              "The user's history is all OPI lacquers; Essie is a similar salon brand.");
    /* code fences and a capitalised key */
    expect_ok("```json\n{\n  \"Rationale\": \"Salon-quality polish fans like trying new brands.\"\n}\n```",
              "Salon-quality polish fans like trying new brands.");
    /* unclosed at the token limit, with an escaped quote and a newline escape */
    expect_ok("{\"rationale\": \"She likes \\\"crackle\\\" finishes\\nand glossy lacquers, so the ballet",
              "She likes \"crackle\" finishes and glossy lacquers, so the ballet");
    /* nested answer */
    expect_ok("{\"rationale\": \"{\"rationale\": \"Pink polish matches her feminine taste.\"}\"}",
              "Pink polish matches her feminine taste.");
    /* another key name: the first string value of the object */
    expect_ok("Here you go: {\"reason\": \"Essie complements the OPI shades with a softer tone.\"} thanks",
              "Essie complements the OPI shades with a softer tone.");
    /* unquoted value */
    expect_ok("rationale: Bright lacquers suggest she enjoys experimenting with colour.\nMore text",
              "Bright lacquers suggest she enjoys experimenting with colour.");
    /* plain prose (format ignored) */
    expect_ok("  The customer enjoys salon manicures at home and soft neutral tones.  ",
              "The customer enjoys salon manicures at home and soft neutral tones.");
    /* \u escapes become UTF-8 */
    expect_ok("{\"rationale\": \"Cr\\u00e8me finishes suit her polished, elegant style.\"}",
              "Cr\xc3\xa8me finishes suit her polished, elegant style.");

    /* failures */
    expect_fail("", PULSE_EXTRACT_EMPTY);
    expect_fail("{\"rationale\": \"\"}", PULSE_EXTRACT_EMPTY);
    expect_fail("{\"rationale\": \"", PULSE_EXTRACT_EMPTY);
    expect_fail("{\"rationale\": \"...\"}", PULSE_EXTRACT_EMPTY);
    expect_fail("{\"rationale\": \"your rationale here\"}", PULSE_EXTRACT_NO_CONTENT);
    expect_fail("{\"rationale\": \"The user, the item, the history.\"}", PULSE_EXTRACT_NO_CONTENT);
    expect_fail("{\"rationale\": \"nail nail nail nail nail nail nail nail nail nail nail nail polish\"}",
                PULSE_EXTRACT_NO_CONTENT);
    expect_fail("{\"rationale\": \"1. OPI Nail Lacquer, Simmer and Shimmer, 0.5-Fluid Ounce 2. OPI Red "
                "Shatter Crackle Nail Polish E55 New\"}",
                PULSE_EXTRACT_COPY);
    expect_fail("{\"rationale\": \"@@@@\xc3\xc3 UUUUUUUUUU XXXXXXXXX\"}", PULSE_EXTRACT_NO_CONTENT);
    expect_fail("{\"rationale\": \"\xe9\xbf y\xff XXXXX \xa0\xa1\xa2\xa3\xa4\"}", PULSE_EXTRACT_NO_CONTENT);
    expect_fail("{\"rationale\": \"aaa bbbb XXXX yyy zzzzz\"}", PULSE_EXTRACT_NO_CONTENT);
    /* the task restated (Gemma-3-270M base wrote this one) */
    expect_fail("{\"rationale\": \"the reasons for choosing this item\"}", PULSE_EXTRACT_NO_CONTENT);
    expect_fail("{\"rationale\": \"This product fits the user's preferences.\"}", PULSE_EXTRACT_NO_CONTENT);
    expect_fail("{}", PULSE_EXTRACT_EMPTY);
    expect_fail("{\"a\": 1, \"b\": [2]}", PULSE_EXTRACT_EMPTY);
    expect_fail("```json\n```", PULSE_EXTRACT_EMPTY);
    char *t = NULL;
    CHECK(pulse_rationale_extract(NULL, NULL, &t) == PULSE_EXTRACT_EMPTY && !t);

    CHECK(pulse_count_words("  a bb  ccc\n d ") == 4);
    CHECK(pulse_count_words("") == 0);
    return test_summary();
}
