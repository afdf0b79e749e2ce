/* tools/pulse/commands.h — every command handler of the `pulse` CLI, one per leaf of the command table in
 * tools/pulse/main.c. A handler gets argv[0] = its own name and returns the process exit code (0 ok, 1 the
 * library failed, 2 usage error). */
#ifndef PULSE_TOOLS_COMMANDS_H
#define PULSE_TOOLS_COMMANDS_H

/* tools/pulse/cmd_data.c */
int cmd_data_stats(int argc, char **argv);
int cmd_data_synth(int argc, char **argv);
int cmd_data_convert(int argc, char **argv);
/* tools/pulse/cmd_eval.c */
int cmd_eval(int argc, char **argv);
/* tools/pulse/cmd_sasrec.c */
int cmd_sasrec_train(int argc, char **argv);
int cmd_sasrec_eval(int argc, char **argv);
int cmd_sasrec_similar(int argc, char **argv);
/* tools/pulse/cmd_textrec.c */
int cmd_textrec_train(int argc, char **argv);
int cmd_textrec_eval(int argc, char **argv);
/* tools/pulse/cmd_lm_<name>.c */
int cmd_lm_info(int argc, char **argv);
int cmd_lm_tokenize(int argc, char **argv);
int cmd_lm_generate(int argc, char **argv);
int cmd_lm_score(int argc, char **argv);
int cmd_lm_bench(int argc, char **argv);
int cmd_lm_train(int argc, char **argv);
/* tools/pulse/cmd_encode.c */
int cmd_encode(int argc, char **argv);
/* tools/pulse/cmd_thought.c */
int cmd_thought_pairs(int argc, char **argv);
int cmd_thought_train(int argc, char **argv);
int cmd_thought_score(int argc, char **argv);
int cmd_thought_eval(int argc, char **argv);
int cmd_thought_plot(int argc, char **argv);
/* tools/pulse/cmd_rationale.c */
int cmd_rationale_phase1(int argc, char **argv);
int cmd_rationale_export(int argc, char **argv);
int cmd_rationale_show(int argc, char **argv);
int cmd_rationale_stats(int argc, char **argv);
/* tools/pulse/cmd_rationale_tot.c */
int cmd_rationale_tot(int argc, char **argv);
/* tools/pulse/cmd_recommend.c */
int cmd_sft_build(int argc, char **argv);
int cmd_recommend(int argc, char **argv);
/* tools/pulse/cmd_pipeline.c */
int cmd_pipeline(int argc, char **argv);
/* tools/pulse/cmd_qa.c */
int cmd_qa_eval(int argc, char **argv);
int cmd_qa_sp(int argc, char **argv);
int cmd_qa_score(int argc, char **argv);
/* tools/pulse/cmd_info.c */
int cmd_info(int argc, char **argv);

#endif
