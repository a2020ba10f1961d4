"""Data-parallel self-play: 2 gloo ranks against 1 process on the same step (issue 14).

    .venv/bin/python bench/data_parallel.py [--steps 1] [--questions-per-task 2] [--group-size 4]

Runs `python -m spell train` (cpu-demo, the tiny random model, DeepSpeed ZeRO-3 with torch's
AdamW) once as one process and once as two ranks under `python -m spell.torchrun`, same seed,
same work, and compares them step by step: the update batch (sequences per role, trained tokens),
the loss and gradient norm, the rewards, and the weights of each checkpoint (largest absolute
difference). Timing: each run's generation seconds per rank (from the metrics' `time.generation_per_rank`)
and the ratio of the two ranks' mean to the one process's; on this 2-core machine the ranks share
the cores with each other (and with DeepSpeed's gloo threads), which bounds the speed-up.

Prints a Markdown table (for docs/benchmarks.md) and the machine's load.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def corpus_file(folder: Path) -> Path:
    from tests.spell.test_selfplay import tiny_corpus_records

    path = folder / "corpus.jsonl"
    with open(path, "w") as f:
        for r in tiny_corpus_records():
            f.write(json.dumps({"id": r.id, "text": r.text, "title": r.title, "cluster": r.cluster, "numeric": r.numeric}) + "\n")
    return path


def run(model: Path, corpus: Path, out: Path, ranks: int, settings: list[str]) -> float:
    launcher = ["-m", "spell"] if ranks == 1 else ["-m", "spell.torchrun", "--standalone", f"--nproc_per_node={ranks}", "-m", "spell"]
    sets = [a for s in settings for a in ("--set", s)]
    started = time.monotonic()
    proc = subprocess.run([sys.executable, *launcher, "train", "--preset", "cpu-demo", "--model", str(model), "--corpus",
                           str(corpus), "--out", str(out), "--no-progress", *sets],
                          cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True)
    if proc.returncode != 0:
        sys.exit(f"{ranks}-rank run failed:\n{proc.stderr[-3000:]}")
    return time.monotonic() - started


def max_weight_difference(a: Path, b: Path) -> float:
    from safetensors.torch import load_file

    x, y = load_file(a / "model" / "model.safetensors"), load_file(b / "model" / "model.safetensors")
    return max(float((x[k].double() - y[k].double()).abs().max()) for k in x)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=1)
    parser.add_argument("--questions-per-task", type=int, default=2)
    parser.add_argument("--group-size", type=int, default=4)
    parser.add_argument("--max-response-tokens", type=int, default=112)
    parser.add_argument("--keep", type=Path, help="keep both run folders here (to compare their samples)")
    args = parser.parse_args()

    from spell.events import read_events
    from spell.models import TINY_RANDOM, prepare_model

    model = prepare_model(TINY_RANDOM)
    settings = [
        "tasks.docs_per_question=2", f"selfplay.questions_per_task={args.questions_per_task}",
        f"selfplay.group_size={args.group_size}", "selfplay.verifier_samples=2", "selfplay.batch_groups=2",
        "selfplay.max_generation_batches=1", f"sampling.max_response_tokens={args.max_response_tokens}",
        "memory.new_docs_per_round=1", "eval.at_start=false", "checkpoint.every_steps=1",
        "selfplay.question_quality_filter=false", "selfplay.train_without_varied_groups=true",
        'trainer.backend="deepspeed"', "trainer.zero_stage=3", f"run.steps={args.steps}",
    ]
    with tempfile.TemporaryDirectory() as tmp:
        folder = args.keep or Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        corpus = corpus_file(folder)
        walls = {n: run(model, corpus, folder / f"ranks{n}", n, settings) for n in (1, 2)}
        metrics = {n: [e["payload"] for e in read_events(folder / f"ranks{n}" / "events.jsonl") if e["type"] == "metrics"]
                   for n in (1, 2)}
        print(f"machine: {platform.node()}, {os.cpu_count()} cores, load {os.getloadavg()[0]:.2f} (1 min) at the end")
        print("| step | ranks | sequences q/r/v | tokens | loss | grad norm | r_res | r_que | generation s per rank | max weight diff vs 1 |")
        print("|---|---|---|---|---|---|---|---|---|---|")
        for step in range(args.steps):
            for n in (1, 2):
                m = metrics[n][step]
                seqs = m["batch"]["sequences"]
                diff = "-" if n == 1 else f"{max_weight_difference(folder / 'ranks1' / 'checkpoints' / f'step-{step + 1:06d}', folder / 'ranks2' / 'checkpoints' / f'step-{step + 1:06d}'):.2e}"
                fmt = lambda v: "-" if v is None else f"{v:.8f}"  # noqa: E731
                print(f"| {step + 1} | {n} | {seqs['questioner']}/{seqs['responder']}/{seqs['verifier']} | {m['train']['tokens']:.0f} | "
                      f"{fmt(m['train']['loss'])} | {fmt(m['train']['grad_norm'])} | {fmt(m['reward']['responder'])} | "
                      f"{fmt(m['reward']['questioner'])} | {list(m['time']['generation_per_rank'].values())} | {diff} |")
        one = sum(m["time"]["generation_per_rank"]["0"] for m in metrics[1])
        two = [sum(m["time"]["generation_per_rank"][r] for m in metrics[2]) for r in ("0", "1")]
        tokens = [sum(m["distributed"]["generated_tokens_per_rank"][r] for m in metrics[2]) for r in ("0", "1")]
        print(f"\ngeneration: 1 process {one:.2f} s; 2 ranks {two[0]:.2f} s and {two[1]:.2f} s "
              f"(tokens {tokens[0]} / {tokens[1]}); per-rank mean / 1 process = {(sum(two) / 2) / one:.2f}")
        print(f"whole command (start-up included): 1 process {walls[1]:.1f} s, 2 ranks {walls[2]:.1f} s")


if __name__ == "__main__":
    main()
