"""Progress inside a step or an evaluation: `progress` events and the terminal's bars or lines.

A step of the CPU demo takes minutes and an evaluation tens of minutes; without this the run page
and the terminal show nothing in between. Each unit of work (a generation phase, the update, an
evaluation) is a *phase* with a total; the code doing the work advances it.

- Events (docs/events.md "progress"): throttled to one per phase every `interval` seconds, plus
  the phase's first and last, so a fast loop never floods `events.jsonl` or the websocket.
- The terminal: on a TTY a bar per phase under the step's bar; in a log (stderr not a TTY: the
  worker's attempt log) one line every `log_every` seconds at most.

`NO_PROGRESS` does nothing: the default wherever no reporter is given (tests, library use).
"""

from __future__ import annotations

import sys
import time
from typing import Any, TextIO

# Phases (docs/events.md): generation per role, the trainer's work, the evaluation.
GENERATION_PHASES = ("questioner", "grounding", "responder", "verifier")
PHASES = (*GENERATION_PHASES, "logprob", "update", "eval", "warmup")


class Phase:
    """One unit of work with a known total; `advance` as parts of it finish."""

    def __init__(self, reporter: "Progress", name: str, total: int, unit: str, step: int | None):
        self.reporter = reporter
        self.name = name
        self.total = max(0, int(total))
        self.unit = unit
        self.step = step
        self.done = 0
        self.tokens = 0
        self.started = time.monotonic()
        self._emitted_at = float("-inf")
        self.finished = False
        self._bar = reporter._open_bar(self)
        self._report(force=True)

    def advance(self, n: int = 1, tokens: int = 0) -> None:
        self.done = min(self.total, self.done + int(n)) if self.total else self.done + int(n)
        self.tokens += int(tokens)
        if self._bar is not None:
            self._bar.update(n)
        self._report(force=False)

    def finish(self) -> None:
        if self.finished:
            return
        self.finished = True
        self.done = max(self.done, self.total)
        if self._bar is not None:
            self._bar.close()
        self._report(force=True)

    def payload(self) -> dict[str, Any]:
        elapsed = time.monotonic() - self.started
        eta = None
        if self.finished:
            eta = 0.0
        elif self.done and self.total:
            eta = round(elapsed / self.done * (self.total - self.done), 1)
        return {
            "phase": self.name, "done": self.done, "total": self.total, "unit": self.unit,
            "tokens": self.tokens, "elapsed_s": round(elapsed, 1), "eta_s": eta,
            "state": "done" if self.finished else "running",
        }

    def _report(self, force: bool) -> None:
        now = time.monotonic()
        if not force and now - self._emitted_at < self.reporter.interval:
            return
        self._emitted_at = now
        self.reporter._emit(self)

    def __enter__(self) -> "Phase":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.finish()


class Progress:
    """Makes phases and reports them: to `events` (an EventWriter, or None) and to `stream`.

    `console`: "bars" (tqdm bars, for a TTY), "lines" (a line every `log_every` s), "off", or
    "auto" (bars on a TTY, lines otherwise). Two processes never share a reporter: rank 0 reports
    (its EventWriter is the enabled one)."""

    def __init__(
        self,
        events: Any = None,
        *,
        console: str = "auto",
        interval: float = 0.5,
        log_every: float = 10.0,
        stream: TextIO | None = None,
        bar_position: int = 1,
    ):
        self.events = events
        self.bar_position = bar_position  # 1: under the step's bar (train); 0: the only bar (eval)
        self.stream = stream or sys.stderr
        if console == "auto":
            console = "bars" if _is_tty(self.stream) else "lines"
        if console not in ("bars", "lines", "off"):
            raise ValueError(f"console must be bars, lines, off or auto, not {console!r}")
        self.console = console
        self.interval = interval
        self.log_every = log_every
        self._line_at = time.monotonic()  # the first line waits log_every: a short phase prints nothing

    def phase(self, name: str, total: int, unit: str = "sequences", *, step: int | None = None) -> Phase:
        return Phase(self, name, total, unit, step)

    def _open_bar(self, phase: Phase):
        if self.console != "bars":
            return None
        from tqdm import tqdm

        return tqdm(total=phase.total, desc=f"  {phase.name}", unit=phase.unit.split()[0], leave=False,
                    position=self.bar_position, file=self.stream)

    def _emit(self, phase: Phase) -> None:
        payload = phase.payload()
        if self.events is not None:
            self.events.emit("progress", payload, step=phase.step)
        if self.console == "lines":
            now = time.monotonic()
            if now - self._line_at >= self.log_every:
                self._line_at = now
                print(f"spell: {describe(payload, step=phase.step if phase.step is not None else self._step())}",
                      file=self.stream, flush=True)

    def _step(self) -> int | None:
        return getattr(self.events, "step", None)


def describe(payload: dict[str, Any], step: int | None = None) -> str:
    """One line for a person: `step 3, responder: 12/36 sequences, 1,234 tokens, ETA 40 s`."""
    parts = []
    if step is not None:
        parts.append(f"step {step}")
    text = f"{payload.get('phase')}: {payload.get('done')}/{payload.get('total')} {payload.get('unit', '')}".rstrip()
    if payload.get("tokens"):
        text += f", {int(payload['tokens']):,} tokens"
    eta = payload.get("eta_s")
    if payload.get("state") == "done":
        text += ", done"
    elif eta is not None:
        text += f", ETA {format_seconds(eta)}"
    parts.append(text)
    return ", ".join(parts)


def summary(phases: dict[str, Any]) -> str:
    """The run page's progress line from the latest progress per phase (each with its `step`, as
    the relay keeps them): the most recent phase, e.g. `Step 4 in progress: responder 12/36
    sequences, 1,234 tokens, ETA 40 s`. Empty when there is none."""
    latest = [p for p in phases.values() if isinstance(p, dict) and p.get("phase")]
    if not latest:
        return ""
    p = max(latest, key=lambda x: (x.get("time") or 0.0))
    step = p.get("step")
    if p["phase"] == "eval":
        head = "Baseline evaluation (step 0)" if not step else f"Evaluation after step {step}"
    elif p["phase"] == "warmup":
        head = "Warm-up before step 1"
    else:
        head = f"Step {step} in progress"
    body = describe(p).replace(f"{p['phase']}: ", f"{p['phase']} ", 1)
    return f"{head}: {body}"


def format_seconds(seconds: float) -> str:
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"


def _is_tty(stream: TextIO) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


class _NoProgress(Progress):
    def __init__(self) -> None:
        super().__init__(None, console="off")

    def _emit(self, phase: Phase) -> None:
        return None


NO_PROGRESS = _NoProgress()
