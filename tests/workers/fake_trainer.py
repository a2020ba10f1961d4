"""A test double of `python -m spell train` for the process protocol (docs/architecture.md
"Process control"): same arguments, events through the real spell.events.EventWriter, SIGTERM =
stop now (exit 143), SIGUSR1 = finish the step, checkpoint, log "paused", exit 0; `--resume`
continues after OUT/checkpoints/latest; exit 2 with one line on stderr for bad input.

Behaviour comes from OUT/fake.json (the test writes it before the run is queued):
    {"mode": "ok" | "bad-input" | "starved" | "crash" | "garbage" | "ignore-term",
     "steps": 3, "step_seconds": 0.0, "samples_per_step": 3, "checkpoint_every": 1}
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from spell.events import EventWriter  # noqa: E402


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--config", required=True)
    p.add_argument("--corpus", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--attempt", type=int, default=1)
    p.add_argument("--resume", action="store_true")
    p.add_argument("--no-progress", action="store_true")
    args = p.parse_args()
    out = Path(args.out)
    spec_path = out / "fake.json"
    spec = json.loads(spec_path.read_text()) if spec_path.exists() else {}
    mode = spec.get("mode", "ok")
    steps = int(spec.get("steps", 3))
    print(f"fake trainer: attempt {args.attempt} resume={args.resume} mode={mode}", flush=True)
    json.loads(Path(args.config).read_text())  # the config must be readable JSON
    docs = [json.loads(line) for line in Path(args.corpus).read_text().splitlines() if line.strip()]
    print(f"fake trainer: {len(docs)} documents", flush=True)

    if mode == "bad-input":
        print("spell train: error: selfplay.group_size: must be >= 2 (got 1)", file=sys.stderr, flush=True)
        return 2
    if mode == "starved":  # spell.train's exit after STARVED_STEPS steps without a question
        print("spell train: error: no question in 5 steps in a row (steps 1-5): ...", file=sys.stderr, flush=True)
        return 3

    pause = {"requested": False}
    signal.signal(signal.SIGUSR1, lambda *_: pause.update(requested=True))
    if mode == "ignore-term":
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    else:
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))

    start = 1
    latest = out / "checkpoints" / "latest"
    if args.resume and latest.exists():
        start = int(latest.read_text().strip().split("-")[1]) + 1
    writer = EventWriter(out / "events.jsonl", attempt=args.attempt)
    writer.log("started", step=start - 1, resumed=args.resume)
    for step in range(start, steps + 1):
        writer.step = step
        writer.emit("metrics", {"reward": {"responder": round(0.1 * step, 3), "questioner": 0.5}, "loss": 1.0 / step,
                                "attempt_seen": args.attempt})
        for i in range(int(spec.get("samples_per_step", 3))):
            writer.emit("sample", {"task": "doc_mc" if i % 2 else "doc_general_qa", "question": f"q{step}.{i}?",
                                   "reference": f"a{i}", "response": f"r{i}", "verdict": "yes" if i % 2 else "no",
                                   "majority": 1 if i % 2 else 0, "rule_score": 1.0, "rewards": {"responder": 1.0},
                                   "votes": [1, 1, 0, 1] if i % 2 else [0, 0, 0, 0]})
        if mode == "garbage" and step == 1:
            with open(out / "events.jsonl", "ab") as f:
                f.write(b"this is not json\n{\"no\": \"type\"}\n")
        if mode == "crash" and step == 2:
            writer.error("boom at step 2", step=step)
            raise RuntimeError("simulated crash in the training loop")
        deadline = time.monotonic() + float(spec.get("step_seconds", 0.0))
        while time.monotonic() < deadline and not pause["requested"]:
            time.sleep(0.02)
        if step % int(spec.get("checkpoint_every", 1)) == 0 or pause["requested"] or step == steps:
            ckpt = out / "checkpoints" / f"step-{step:06d}"
            (ckpt / "model").mkdir(parents=True, exist_ok=True)
            (ckpt / "model" / "config.json").write_text(json.dumps({"step": step}))
            (ckpt / "model" / "model.safetensors").write_bytes(b"\0" * 1024)
            (ckpt / "state.json").write_text(json.dumps({"version": 1, "step": step}))  # complete (spell/rundir.py)
            tmp = out / "checkpoints" / "latest.tmp"
            tmp.write_text(ckpt.name)
            tmp.replace(latest)
            writer.emit("checkpoint", {"path": str(ckpt), "step": step}, step=step)
        if pause["requested"]:
            writer.log("paused", step=step)
            writer.close()
            return 0
    writer.log("finished", step=steps)
    writer.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
