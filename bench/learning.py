"""Does self-play teach the model? Train a preset on the sample corpus for a wall-clock budget (or
a number of steps), evaluate held-out sets at step 0 and at intervals, and print the learning table.

    .venv/bin/python bench/learning.py --minutes 120 --out var/bench/learning       # train, then report
    .venv/bin/python bench/learning.py --report var/bench/learning                  # report a run (also mid-run)

The run is `python -m spell train` (the product's own CLI), so the table describes what a user of
the preset gets: the same prompts, grammars and evaluation (the responder's prompt and answer-line
grammar at step 0 and at the end). The held-out sets (scripts/make_heldout_sets.py) are about towns
that appear nowhere in the training corpus.

Per evaluation step, per set: mean@k and pass@k, and the change in mean@k since step 0 with a
paired-bootstrap 95% interval over items (spell/stats.py). Per training interval (the steps since
the previous evaluation): question quality, the verifier's true-positive / true-negative rates
against the rule score (pooled counts), the responder's no-answer rate, and wall seconds.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from spell.stats import paired_bootstrap  # noqa: E402

HELDOUT = ["samples/eval/heldout_towns_mc.json", "samples/eval/heldout_towns_qa.jsonl"]


def read_events(path: Path) -> list[dict]:
    events = []
    for line in path.read_text().splitlines():
        try:
            events.append(json.loads(line))
        except json.JSONDecodeError:
            continue  # a line still being written
    return events


def _mean(values: list[float]) -> float | None:
    values = [v for v in values if v is not None]
    return sum(values) / len(values) if values else None


def interval_stats(metrics: list[dict]) -> dict:
    """Pooled over the steps of one interval."""
    q = [m["questioner"] for m in metrics]
    v = [m["verifier"] for m in metrics]
    r = [m["responder"] for m in metrics]
    pos, neg = sum(x.get("rule_positives") or 0 for x in v), sum(x.get("rule_negatives") or 0 for x in v)
    tp, tn = sum(x.get("true_positives") or 0 for x in v), sum(x.get("true_negatives") or 0 for x in v)
    samples = sum(x.get("samples") or 0 for x in q)
    return {
        "steps": [m["_step"] for m in metrics],
        "question_quality": _mean([x.get("question_quality") for x in q]),
        "questions": samples,
        "verifier_tpr": tp / pos if pos else None,
        "verifier_tnr": tn / neg if neg else None,
        "verifier_counts": [tp, pos, tn, neg],
        "no_answer_rate": _mean([x.get("no_answer_rate") for x in r]),
        "seconds": sum(m["time"]["total"] for m in metrics),
    }


def report(out: Path) -> dict:
    events = read_events(out / "events.jsonl")
    evals = [e for e in events if e["type"] == "eval"]
    metrics = [{**e["payload"], "_step": e["step"]} for e in events if e["type"] == "metrics"]
    if not evals:
        raise SystemExit(f"{out}: no evaluation yet")
    base = evals[0]
    # With a warm-up (warmup.enabled) the run evaluates twice at step 0: before it and after it.
    # Changes are given since step 0 (the whole gain) and, after a warm-up, since the warm-up
    # (self-play's own gain).
    warmed = next((e for e in evals if e["payload"].get("after_warmup")), None)
    rows, previous = [], base["step"]
    for ev in evals:
        span = [m for m in metrics if previous < m["_step"] <= ev["step"]]
        label = f"{ev['step']} (after warm-up)" if ev is warmed else str(ev["step"])
        row = {"step": ev["step"], "label": label, "seconds": ev["payload"].get("seconds"), "sets": {},
               "train": interval_stats(span) if span else None}
        # Every evaluation after step 0's is compared with it; those after the warm-up's also with that.
        references = [("change", base)] if ev is not base else []
        if warmed is not None and ev["seq"] > warmed["seq"]:
            references.append(("selfplay_change", warmed))
        for name, res in ev["payload"]["sets"].items():
            entry = {"mean@k": res["mean@k"], "pass@k": res["pass@k"], "k": res["k"], "items": res["items"]}
            for key, ref in references:
                before, after = ref["payload"]["sets"].get(name, {}).get("item_means"), res.get("item_means")
                if before and after and len(before) == len(after):
                    entry[key] = paired_bootstrap(before, after).as_dict()
            row["sets"][name] = entry
        rows.append(row)
        previous = ev["step"]
    warmup_log = next((e["payload"] for e in events if e["type"] == "log" and e["payload"].get("message") == "warm-up finished"), None)
    finished = [e["payload"] for e in events if e["type"] == "log" and e["payload"].get("message") == "finished"]
    wall = events[-1]["time"] - events[0]["time"] if events else 0.0
    return {"run": str(out), "rows": rows, "finished": bool(finished), "steps": len(metrics), "wall_seconds": round(wall, 1),
            "warmup": warmup_log,
            "overall": interval_stats(metrics) if metrics else None}


def _f(x, spec=".3f") -> str:
    return "-" if x is None else format(x, spec)


def print_table(result: dict) -> None:
    names = sorted({n for row in result["rows"] for n in row["sets"]})
    head = ["step"] + [f"{n} mean@k / pass@k (change since step 0, 95% CI; [since the warm-up])" for n in names] + [
        "question quality", "verifier TPR / TNR", "no-answer", "train s", "eval s"]
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    for row in result["rows"]:
        cells = [row.get("label", str(row["step"]))]
        for n in names:
            s = row["sets"].get(n)
            if not s:
                cells.append("-")
                continue
            text = f"{s['mean@k']:.3f} / {s['pass@k']:.3f}"
            if "change" in s:
                c = s["change"]
                text += f" ({c['delta']:+.3f}, {c['low']:+.3f} to {c['high']:+.3f})"
            if "selfplay_change" in s:
                c = s["selfplay_change"]
                text += f" [{c['delta']:+.3f}, {c['low']:+.3f} to {c['high']:+.3f}]"
            cells.append(text)
        t = row["train"]
        if t:
            cells += [_f(t["question_quality"], ".2f"), f"{_f(t['verifier_tpr'], '.2f')} / {_f(t['verifier_tnr'], '.2f')}",
                      _f(t["no_answer_rate"], ".2f"), f"{t['seconds']:.0f}"]
        else:
            cells += ["-", "-", "-", "-"]
        cells.append(_f(row["seconds"], ".0f"))
        print("| " + " | ".join(cells) + " |")
    w = result.get("warmup")
    if w:
        print(f"\nwarm-up: {w.get('examples')} examples, {w.get('optimizer_steps')} optimizer steps, {w.get('seconds')} s, "
              f"loss {_f(w.get('loss_first'))} -> {_f(w.get('loss_last'))}")
    o = result["overall"]
    if o:
        tp, pos, tn, neg = o["verifier_counts"]
        print(f"\n{result['steps']} steps in {result['wall_seconds']:.0f} s wall ({'finished' if result['finished'] else 'running'}); "
              f"over the run: question quality {_f(o['question_quality'], '.2f')}, verifier TPR {tp}/{pos} TNR {tn}/{neg}, "
              f"{o['questions']} questions")


def train(args: argparse.Namespace) -> None:
    sets = [str(ROOT / s) for s in args.sets]
    overrides = {
        "eval.sets": json.dumps(sets), "eval.samples": str(args.k), "eval.every_steps": str(args.eval_every),
        "eval.at_start": "true", "run.steps": str(args.steps), "run.time_budget_minutes": str(args.minutes),
        "checkpoint.every_steps": str(args.eval_every),
    }
    overrides.update(dict(s.split("=", 1) for s in args.set))
    cmd = [sys.executable, "-m", "spell", "train", "--preset", args.preset, "--model", args.model,
           "--corpus", str(ROOT / args.corpus), "--out", str(args.out), "--no-progress"]
    for k, v in overrides.items():
        cmd += ["--set", f"{k}={v}"]
    started = time.monotonic()
    print(" ".join(cmd), flush=True)
    proc = subprocess.run(cmd, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})
    print(f"spell train exited {proc.returncode} after {time.monotonic() - started:.0f} s", flush=True)


def main() -> None:
    p = argparse.ArgumentParser(description="train a preset and report its held-out learning curve")
    p.add_argument("--report", type=Path, help="only report this run folder")
    p.add_argument("--out", type=Path, default=ROOT / "var" / "bench" / "learning")
    p.add_argument("--preset", default="cpu-demo")
    p.add_argument("--model", default=None, help="model folder (default: the bundled SmolLM2)")
    p.add_argument("--corpus", default="samples/corpus/sample.jsonl")
    p.add_argument("--sets", nargs="+", default=HELDOUT)
    p.add_argument("--minutes", type=float, default=120.0, help="wall-clock budget of the training run")
    p.add_argument("--steps", type=int, default=1000, help="at most this many steps")
    p.add_argument("--k", type=int, default=4, help="samples per evaluation item")
    p.add_argument("--eval-every", type=int, default=10)
    p.add_argument("--set", action="append", default=[], help="extra section.key=value for spell train")
    p.add_argument("--json", type=Path, help="also write the report as JSON here")
    args = p.parse_args()
    if args.report is None:
        if args.model is None:
            from spell.models import SMOLLM2, prepare_model

            args.model = str(prepare_model(SMOLLM2))
        if args.out.exists() and any(args.out.iterdir()):
            raise SystemExit(f"{args.out} is not empty: pick another --out (or --report it)")
        train(args)
    result = report(args.report or args.out)
    print_table(result)
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
