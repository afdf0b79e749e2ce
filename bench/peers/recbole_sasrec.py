#!/usr/bin/env python3
"""bench/peers/recbole_sasrec.py — driver for bench/peers/recbole_sasrec.sh (runs inside its RecBole venv).

1. Converts an S3-Rec/P5 `sequences.txt` (`user item item ...`, chronological) into a RecBole atomic file
   WORK/NAME/NAME.inter with columns user_id:token item_id:token timestamp:float, where timestamp = the item's position
   in the user's sequence (0, 1, 2, ...). RecBole's TO ordering + LS leave-one-out split then gives exactly our split:
   last item = test, second-to-last = valid, the rest = train.
2. Trains RecBole 1.2.1's SASRec on it on CPU with the issue's settings and full-ranking evaluation (history masked),
   timing each training epoch (the trainer's _train_epoch, i.e. what RecBole logs as "training [time: ...]").
3. Prints one JSON object as the last stdout line: sec_per_epoch, sec_per_target (one training sample = one
   (prefix -> next item) loss term, the unit both sides' epochs are made of), per-epoch times, the valid curve
   (epoch, cumulative training seconds, valid NDCG@10: the time to reach a valid NDCG@10), best epoch, valid and
   test metrics.

Settings (matched to pulse's SASRec, pmixer/SASRec.pytorch semantics): hidden 64, 2 blocks, 1 head, FFN inner size 64
(pmixer's point-wise FFN is d x d; RecBole's default would be 256), ReLU FFN activation (RecBole default gelu), dropout
0.2 on hidden and attention, max length 50, batch 128, CE over all items, Adam lr 1e-3 (RecBole's Adam: betas
(0.9, 0.999), no weight decay). Differences that remain, by RecBole's design: post-LN blocks (pmixer: pre-LN), and
training samples are every prefix of each training sequence with the loss on its last position (data augmentation),
so one RecBole epoch is ~131k samples on Beauty where a pmixer-style epoch is one pass over the 22,363 users.
"""
import argparse
import json
import os
import resource
import sys
import time


def convert(seq_path, out_dir, name):
    """sequences.txt -> out_dir/name/name.inter (written atomically); returns (users, items, interactions)."""
    ddir = os.path.join(out_dir, name)
    os.makedirs(ddir, exist_ok=True)
    dst = os.path.join(ddir, name + ".inter")
    tmp = dst + ".tmp"
    users, items, n = 0, set(), 0
    with open(seq_path, encoding="utf-8") as f, open(tmp, "w", encoding="utf-8") as out:
        out.write("user_id:token\titem_id:token\ttimestamp:float\n")
        for lineno, line in enumerate(f, 1):
            tok = line.split()
            if not tok:
                raise SystemExit(f"{seq_path}:{lineno}: expected 'user item item ...', found an empty line")
            for t in tok:
                if not t.isdigit():
                    raise SystemExit(f"{seq_path}:{lineno}: expected a non-negative integer id, found '{t}'")
            users += 1
            for pos, it in enumerate(tok[1:]):
                out.write(f"{tok[0]}\t{it}\t{pos}\n")
                items.add(it)
                n += 1
    os.replace(tmp, dst)
    return users, len(items), n


class BatchLimit(Exception):
    pass


def timing(a, trainer, model, train_data, rb_version, torch, counts, converter):
    """times a.timing_batches steady-state training steps (data loading + forward + backward + Adam), prints JSON"""
    warm, n_timed = 5, a.timing_batches
    marks, orig_loss = {}, model.calculate_loss

    def counted(interaction):
        k = counted.calls
        counted.calls += 1
        if k == warm:
            marks["t0"], marks["c0"] = time.perf_counter(), time.process_time()
        if k == warm + n_timed:
            marks["t1"], marks["c1"] = time.perf_counter(), time.process_time()
            raise BatchLimit()
        return orig_loss(interaction)

    counted.calls = 0
    try:
        Trainer = type(trainer)
        Trainer._train_epoch(trainer, train_data, 0, loss_func=counted)
    except BatchLimit:
        pass
    if "t1" not in marks:
        raise SystemExit(f"--timing-batches {n_timed}: an epoch has only {len(train_data)} batches")
    per_batch = (marks["t1"] - marks["t0"]) / n_timed
    cpu_per_batch = (marks["c1"] - marks["c0"]) / n_timed
    u, i, n = counts
    print(json.dumps({
        "dataset": a.data, "model": "RecBole-SASRec", "recbole": rb_version, "torch": torch.__version__,
        "threads": torch.get_num_threads(), "loss": "CE", "users": u, "items": i, "interactions": n,
        "converter": converter, "train_samples": len(train_data._dataset), "batches_per_epoch": len(train_data),
        "timed_batches": n_timed, "sec_per_batch": round(per_batch, 5),
        "sec_per_epoch": round(per_batch * len(train_data), 3),
        "sec_per_target": float(f"{per_batch * len(train_data) / len(train_data._dataset):.4g}"),
        "cpu_s_per_epoch": round(cpu_per_batch * len(train_data), 3),
        "sec_per_epoch_method": f"mean of {n_timed} timed batches (after {warm} warm-up) x {len(train_data)} batches",
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "load_avg_end": [round(x, 2) for x in os.getloadavg()],
    }), flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", required=True, help="dataset folder with sequences.txt")
    ap.add_argument("--work", required=True, help="work folder: converted data, RecBole logs and checkpoints")
    ap.add_argument("--name", default="beauty")
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--early-stop", type=int, default=0, help="stopping_step (0: train exactly --epochs)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=2020)
    ap.add_argument("--time-limit", type=float, default=0,
                    help="seconds: start no new epoch after this; test uses the best-valid model so far (0: no limit)")
    ap.add_argument("--timing-batches", type=int, default=0,
                    help="timing only: time N training batches (after 5 warm-up batches), report N-batch mean x "
                         "batches per epoch as sec_per_epoch, no evaluation (0: train whole epochs)")
    ap.add_argument("--resume", default="", help="RecBole checkpoint (.pth) of an earlier run to continue from")
    ap.add_argument("--pulse", default="", help="pulse binary: convert with `pulse data convert --to recbole` too, "
                    "check it is byte-identical to this driver's conversion, and use its file")
    ap.add_argument("--convert-only", action="store_true")
    a = ap.parse_args()

    seq = os.path.join(a.data, "sequences.txt")
    t0 = time.time()
    u, i, n = convert(seq, a.work, a.name)
    inter = os.path.join(a.work, a.name, a.name + ".inter")
    print(f"converted {seq}: {u} users, {i} items, {n} interactions -> {inter} ({time.time() - t0:.1f}s)",
          file=sys.stderr)
    converter = "bench/peers/recbole_sasrec.py"
    if a.pulse:
        import filecmp
        import shutil
        import subprocess
        pdir = os.path.join(a.work, a.name + ".pulse-convert", a.name)
        subprocess.run([a.pulse, "data", "convert", "--data", a.data, "--to", "recbole", "--out", pdir,
                        "--name", a.name], check=True, stdout=subprocess.DEVNULL)
        pinter = os.path.join(pdir, a.name + ".inter")
        if not filecmp.cmp(pinter, inter, shallow=False):
            raise SystemExit(f"{pinter} (pulse data convert) differs from {inter} (this driver): not benchmarking")
        shutil.copyfile(pinter, inter)  # the .item file stays out: SASRec uses interactions only
        converter = "pulse data convert --to recbole (byte-identical to bench/peers/recbole_sasrec.py's)"
        print(f"pulse data convert wrote the same .inter byte for byte; using it", file=sys.stderr)
    if a.convert_only:
        print(json.dumps({"users": u, "items": i, "interactions": n, "converter": converter}))
        return

    os.environ["CUDA_VISIBLE_DEVICES"] = ""
    os.environ.setdefault("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "1")  # RecBole's checkpoint reload predates torch 2.6
    import torch
    torch.set_num_threads(a.threads)
    import recbole
    from recbole.config import Config
    from recbole.data import create_dataset, data_preparation
    from recbole.model.sequential_recommender import SASRec
    from recbole.trainer import Trainer
    from recbole.utils import init_logger, init_seed

    os.chdir(a.work)  # RecBole writes log/ and log_tensorboard/ into the working directory
    cfg = {
        "gpu_id": "", "use_gpu": False, "seed": a.seed, "reproducibility": True, "show_progress": False,
        "data_path": a.work, "checkpoint_dir": os.path.join(a.work, "saved"), "worker": 0,
        "load_col": {"inter": ["user_id", "item_id", "timestamp"]},
        "MAX_ITEM_LIST_LENGTH": 50,
        # model
        "n_layers": 2, "n_heads": 1, "hidden_size": 64, "inner_size": 64, "hidden_act": "relu",
        "hidden_dropout_prob": 0.2, "attn_dropout_prob": 0.2, "loss_type": "CE",
        # training
        "epochs": a.epochs, "train_batch_size": 128, "learner": "adam", "learning_rate": 1e-3,
        "train_neg_sample_args": None, "eval_step": 1,
        "stopping_step": a.early_stop if a.early_stop > 0 else a.epochs + 1,
        # evaluation: leave-one-out by position, full ranking over all items with history masked
        "eval_args": {"split": {"LS": "valid_and_test"}, "order": "TO", "group_by": "user", "mode": "full"},
        "metrics": ["Hit", "NDCG", "MRR"], "topk": [5, 10, 20], "valid_metric": "NDCG@10",
        "eval_batch_size": 2048,
    }
    sys.argv = sys.argv[:1]  # RecBole's Config also parses --key=value from the command line: give it only cfg
    config = Config(model="SASRec", dataset=a.name, config_dict=cfg)
    init_seed(config["seed"], config["reproducibility"])
    init_logger(config)
    torch.set_num_threads(a.threads)  # after init_seed, in case anything reset it
    dataset = create_dataset(config)
    train_data, valid_data, test_data = data_preparation(config, dataset)
    model = SASRec(config, train_data._dataset).to(config["device"])
    trainer = Trainer(config, model)
    import logging
    log = logging.getLogger()
    log.info(config)
    log.info(dataset)
    log.info(model)

    class TimeUp(Exception):
        pass

    train_times, cpu_times, eval_times, saved_epochs, curve = [], [], [], [], []
    orig_train, orig_valid, orig_save = trainer._train_epoch, trainer._valid_epoch, trainer._save_checkpoint

    def timed_train(*args, **kw):
        if a.time_limit > 0 and time.time() - t_fit > a.time_limit:
            raise TimeUp()
        s, c = time.perf_counter(), time.process_time()
        r = orig_train(*args, **kw)
        train_times.append(time.perf_counter() - s)
        cpu_times.append(time.process_time() - c)
        print(f"epoch {len(train_times) - 1}: train {train_times[-1]:.2f}s wall, {cpu_times[-1]:.2f}s cpu, "
              f"load {os.getloadavg()[0]:.2f}", file=sys.stderr, flush=True)
        return r

    def timed_valid(*args, **kw):
        s = time.perf_counter()
        r = orig_valid(*args, **kw)
        eval_times.append(time.perf_counter() - s)
        # (epoch, training seconds so far (evaluation excluded), valid NDCG@10 of the model after that epoch)
        curve.append({"epoch": len(train_times), "train_s": round(sum(train_times), 3),
                      "ndcg10": round(float(dict(r[1]).get("ndcg@10", float("nan"))), 6)})
        print(f"  valid {r[1]} ({eval_times[-1]:.2f}s)", file=sys.stderr, flush=True)
        return r

    def saving(epoch, *args, **kw):
        saved_epochs.append(epoch)
        return orig_save(epoch, *args, **kw)

    trainer._train_epoch, trainer._valid_epoch, trainer._save_checkpoint = timed_train, timed_valid, saving
    if a.timing_batches > 0:
        timing(a, trainer, model, train_data, recbole.__version__, torch, (u, i, n), converter)
        return
    if a.resume:
        trainer.resume_checkpoint(a.resume)
    t_fit = time.time()
    truncated = False
    try:
        _, best_valid = trainer.fit(train_data, valid_data, saved=True, show_progress=False)
    except TimeUp:
        truncated = True
        best_valid = trainer.best_valid_result
        print(f"time limit {a.time_limit:.0f}s reached after {len(train_times)} epochs: testing the best-valid model",
              file=sys.stderr)
    fit_s = time.time() - t_fit
    test = trainer.evaluate(test_data, load_best_model=True, show_progress=False)

    def clean(d):  # None: a resumed run that never beat the checkpoint's valid score (RecBole keeps no result for it)
        return {k: round(float(v), 5) for k, v in dict(d).items()} if d is not None else None

    spe = sum(train_times) / len(train_times)
    out = {
        "dataset": a.data, "model": "RecBole-SASRec", "recbole": recbole.__version__, "torch": torch.__version__,
        "threads": torch.get_num_threads(), "protocol": "full", "loss": "CE",
        "users": u, "items": i, "interactions": n, "converter": converter,
        "train_samples": len(train_data._dataset), "batches_per_epoch": len(train_data), "recbole_users": dataset.user_num - 1, "recbole_items": dataset.item_num - 1,
        "valid_users": len(valid_data._dataset), "test_users": len(test_data._dataset),
        "epochs": len(train_times), "sec_per_epoch": round(spe, 3),
        "sec_per_target": float(f"{spe / len(train_data._dataset):.4g}"), "valid_curve": curve,
        "sec_per_epoch_median": round(sorted(train_times)[len(train_times) // 2], 3),
        "cpu_s_per_epoch": round(sum(cpu_times) / len(cpu_times), 3),
        "epoch_train_s": [round(t, 2) for t in train_times], "eval_s_mean": round(sum(eval_times) / len(eval_times), 2),
        "fit_s": round(fit_s, 1), "best_epoch": saved_epochs[-1] if saved_epochs else None,
        "truncated_by_time_limit": truncated, "early_stop": a.early_stop,
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "valid": clean(best_valid), "test": clean(test), "checkpoint": trainer.saved_model_file, "load_avg_end": [round(x, 2) for x in os.getloadavg()],
    }
    print(json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
