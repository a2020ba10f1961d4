"""The live dashboard's data, pure: which metric goes on which chart, min/max downsampling of a
series, several runs overlaid, and the config table of a comparison.

Metric names are the relay's dotted names (docs/events.md "metrics"; eval events prefixed `eval.`).
A chart lists exact names and `*` patterns (one segment, e.g. `task.*.pass_rate`); a name the run
never reported is simply left out, so older or partial runs still draw what they have.
"""

from __future__ import annotations

import math
import re
from typing import Any, Iterable, Sequence

DEFAULT_MAX_POINTS = 2000  # per series; a chart of a few thousand points stays fast in the browser
MIN_MAX_POINTS = 10
MAX_MAX_POINTS = 20000
MAX_COMPARE_RUNS = 6

# key, title, y-axis title, metric names or one-segment patterns (in trace order). `y_kind` /
# `y2_kind` say what an axis holds, so the page gives it a range that reads well even with one point
# or a constant series (dashboard.js, KINDS): "share" 0..1, "reward" -1..1, "count" whole numbers
# from 0, "stage" the curriculum stage index, "amount" a non-negative quantity (tokens, seconds),
# "free" anything (a loss or a KL estimate can be negative). `stacked`: per-step parts of a whole,
# drawn as stacked bars (a stacked area of one step has no width: nothing would show).
AXIS_KINDS = ("share", "reward", "count", "stage", "amount", "free")
CHARTS: tuple[dict[str, Any], ...] = (
    {"key": "reward", "title": "Reward per role", "y": "mean reward", "y_kind": "reward",
     "metrics": ["reward.questioner", "reward.responder", "reward.verifier", "reward.rule"]},
    {"key": "pass_rate", "title": "Pass rates", "y": "share", "y_kind": "share",
     "metrics": ["pass_rate.responder", "pass_rate.rule", "pass_rate.grounding", "curriculum.rolling_accuracy",
                 "task.*.pass_rate"]},
    {"key": "question_quality", "title": "Question quality: records that are real questions about their documents",
     "y": "share", "y_kind": "share", "metrics": ["questioner.question_quality", "questioner.parse_rate"]},
    {"key": "questioner", "title": "Questioner reward distribution", "y": "questions per step", "y_kind": "count",
     "metrics": ["questioner.valid", "questioner.format_error", "questioner.ungrounded", "questioner.zero_variance",
                 "questioner.all_solved", "questioner.none_solved", "questioner.dropped", "questioner.skipped_context"]},
    # not stacked: the counts overlap (all_solved + none_solved = zero_variance, skipped_context is
    # part of dropped), so a stack would count a question twice
    {"key": "verifier", "title": "Verifier: YES rate and agreement with the rule score", "y": "share", "y_kind": "share",
     "metrics": ["verifier.yes_rate", "verifier.agreement_with_rule", "verifier.true_positive_rate",
                 "verifier.true_negative_rate", "verifier.format_error_rate"]},
    {"key": "curriculum", "title": "Curriculum stage", "y": "stage (0 = first)", "y_kind": "stage",
     "metrics": ["curriculum.stage"],
     "y2": ["curriculum.max_context"], "y2_title": "max context (tokens)", "y2_kind": "amount"},
    {"key": "context", "title": "Context tokens and memory depth", "y": "tokens", "y_kind": "amount",
     "metrics": ["context_tokens.mean", "context_tokens.max"],
     "y2": ["memory.depth_mean", "memory.depth_max"], "y2_title": "memory depth", "y2_kind": "amount"},
    {"key": "keep_ratio", "title": "Dynamic sampling: keep ratio", "y": "share", "y_kind": "share",
     "metrics": ["responder.keep_ratio", "responder.truncated_rate", "responder.no_answer_rate"],
     "y2": ["batch.generation_batches"], "y2_title": "generation batches", "y2_kind": "count"},
    {"key": "loss", "title": "Loss and KL", "y": "loss", "y_kind": "free",
     "metrics": ["train.loss", "train.pg_loss"], "y2": ["train.kl"], "y2_title": "KL", "y2_kind": "free"},
    {"key": "entropy", "title": "Entropy, grad norm, clip fraction", "y": "entropy", "y_kind": "amount",
     "metrics": ["train.entropy", "train.clip_fraction"], "y2": ["train.grad_norm"], "y2_title": "grad norm",
     "y2_kind": "amount"},
    {"key": "throughput", "title": "Tokens per second", "y": "tokens/s", "y_kind": "amount",
     "metrics": ["throughput.generation_tokens_per_s", "throughput.trained_tokens_per_s"]},
    {"key": "time", "title": "Step time split", "y": "seconds", "y_kind": "amount", "stacked": True,
     "metrics": ["time.generation", "time.logprob", "time.update", "time.weight_sync", "time.outside_model"]},
    {"key": "ranks", "title": "Ranks: generation seconds and tokens per rank (a straggler stands out)", "y": "seconds",
     "y_kind": "amount", "metrics": ["time.generation_per_rank.*"],
     "y2": ["distributed.generated_tokens_per_rank.*"], "y2_title": "generated tokens", "y2_kind": "amount"},
    {"key": "eval", "title": "Evaluation (mean@k and pass@k per set)", "y": "score", "y_kind": "share",
     "metrics": ["eval.sets.*.mean@k", "eval.sets.*.pass@k", "eval.mean"]},
)


def _pattern(name: str) -> re.Pattern:
    # `*` matches exactly one dotted segment (task names hold no dots)
    return re.compile("^" + ".".join("[^.]+" if part == "*" else re.escape(part) for part in name.split(".")) + "$")


def resolve(patterns: Sequence[str], available: Iterable[str]) -> list[str]:
    """The available names each pattern matches, in pattern order (matches of one pattern sorted)."""
    available = list(dict.fromkeys(available))
    out: list[str] = []
    for pat in patterns:
        if "*" in pat:
            rx = _pattern(pat)
            out.extend(sorted(n for n in available if rx.match(n) and n not in out))
        elif pat in available and pat not in out:
            out.append(pat)
    return out


def chart_groups(available: Iterable[str]) -> list[dict[str, Any]]:
    """The charts this run can draw: each with the `traces` (metric names) it has data for, and
    `patterns` the page uses to place names that appear later (a new task, the first eval)."""
    available = list(available)
    groups = []
    for chart in CHARTS:
        y1 = resolve(chart["metrics"], available)
        y2 = resolve(chart.get("y2", []), available)
        groups.append({
            "key": chart["key"], "title": chart["title"], "y": chart["y"], "y2_title": chart.get("y2_title", ""),
            "y_kind": chart.get("y_kind", "free"), "y2_kind": chart.get("y2_kind", "free"),
            "stacked": bool(chart.get("stacked")),
            "patterns": list(chart["metrics"]), "y2_patterns": list(chart.get("y2", [])),
            "traces": [{"name": n, "axis": "y"} for n in y1] + [{"name": n, "axis": "y2"} for n in y2],
        })
    return groups


def chart_names(available: Iterable[str]) -> list[str]:
    """Every available name some chart shows (what the page asks series.json for)."""
    return [t["name"] for g in chart_groups(available) for t in g["traces"]]


# --- downsampling --------------------------------------------------------------------------------


def downsample(points: Sequence[tuple[int, float | None]], max_points: int) -> list[tuple[int, float | None]]:
    """At most `max_points` of `points` (step, value), in step order, keeping the shape: the
    points are cut into max_points // 2 buckets of (nearly) equal count and each bucket keeps its
    minimum and its maximum (in their original order; one point when they coincide). None values
    (a NaN the process reported) are gaps: a bucket keeps one None only when it holds nothing else.
    Series no longer than max_points come back unchanged."""
    n = len(points)
    if n <= max_points:
        return list(points)
    buckets = max(1, max_points // 2)
    out: list[tuple[int, float | None]] = []
    for b in range(buckets):
        lo, hi = b * n // buckets, (b + 1) * n // buckets
        chunk = points[lo:hi]
        numbers = [(i, p) for i, p in enumerate(chunk) if p[1] is not None]
        if not numbers:
            out.append(chunk[0])
            continue
        i_min = min(numbers, key=lambda ip: (ip[1][1], ip[0]))[0]
        i_max = max(numbers, key=lambda ip: (ip[1][1], -ip[0]))[0]
        for i in sorted({i_min, i_max}):
            out.append(chunk[i])
    return out


def series_payload(points: Sequence[tuple[int, float | None]], max_points: int) -> dict[str, Any]:
    """One series as the page wants it: parallel `steps` / `values` lists."""
    kept = downsample(points, max_points)
    return {"steps": [p[0] for p in kept], "values": [p[1] for p in kept], "total": len(points),
            "downsampled": len(kept) < len(points)}


def parse_max_points(raw: str | None) -> int:
    """?max_points= (default DEFAULT_MAX_POINTS); ValueError with a message for anything else."""
    if raw in (None, ""):
        return DEFAULT_MAX_POINTS
    try:
        value = int(raw)
    except (TypeError, ValueError):
        raise ValueError("max_points must be an integer") from None
    if not MIN_MAX_POINTS <= value <= MAX_MAX_POINTS:
        raise ValueError(f"max_points must be between {MIN_MAX_POINTS} and {MAX_MAX_POINTS}")
    return value


def parse_names(raw: str | None) -> list[str] | None:
    """?names=a,b (None = the charts' names); ValueError for a name no metric could have."""
    if not raw:
        return None
    names = [n.strip() for n in raw.split(",") if n.strip()]
    if len(names) > 500:
        raise ValueError("at most 500 names")
    for n in names:
        if len(n) > 200 or not re.fullmatch(r"[A-Za-z0-9_.@\-]+", n):
            raise ValueError(f"bad metric name {n[:60]!r}")
    return names


def parse_ids(raw: str | None) -> list[int]:
    """?ids=1,2 for a comparison: 2 to MAX_COMPARE_RUNS distinct run ids, in the given order."""
    parts = [p.strip() for p in (raw or "").split(",") if p.strip()]
    if not all(p.isdigit() for p in parts):
        raise ValueError("ids must be run numbers separated by commas, e.g. ids=3,7")
    ids = list(dict.fromkeys(int(p) for p in parts))
    if not 2 <= len(ids) <= MAX_COMPARE_RUNS:
        raise ValueError(f"compare 2 to {MAX_COMPARE_RUNS} different runs")
    return ids


# --- several runs --------------------------------------------------------------------------------


def overlay(runs: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Charts with every run's series on them. `runs`: [{"id", "label", "series": {name: payload}}];
    each trace carries its run id and label, and the traces of one run share a `color` index, so a
    run looks the same on every chart."""
    available: list[str] = []
    for r in runs:
        available.extend(n for n in r["series"] if n not in available)
    charts = []
    for group in chart_groups(available):
        traces = []
        for color, r in enumerate(runs):
            for t in group["traces"]:
                s = r["series"].get(t["name"])
                if s is None:
                    continue
                traces.append({"run": r["id"], "label": f"{r['label']} · {t['name']}", "metric": t["name"],
                               "axis": t["axis"], "color": color, "steps": s["steps"], "values": s["values"]})
        if traces:
            charts.append({**{k: group[k] for k in ("key", "title", "y", "y2_title", "y_kind", "y2_kind", "stacked")},
                           "traces": traces})
    return charts


def config_table(columns: Sequence[dict[str, Any]], order: Sequence[str] = ()) -> list[dict[str, Any]]:
    """Rows where the runs' flat configs differ: `columns` = [{"id", "values": {field: value}}],
    fields in `order` first (the form's order), then the rest sorted. A field one run lacks shows "—"."""
    fields: list[str] = [f for f in order if any(f in c["values"] for c in columns)]
    rest = sorted({f for c in columns for f in c["values"]} - set(fields))
    rows = []
    for field in fields + rest:
        values = [c["values"].get(field, "—") for c in columns]
        if any(v != values[0] for v in values[1:]):
            rows.append({"field": field, "values": values})
    return rows


# --- numbers people read, and the curriculum stage -----------------------------------------------


def format_number(value: Any, digits: int = 3) -> str:
    """A metric value as a table shows it: 3 significant digits (0.32465246735834974 -> 0.325,
    347.57 -> 348), whole numbers as they are, 1,000 and above as a grouped integer (16,384), "—"
    for None, NaN and infinities. Anything that is not a number comes back as its text.
    dashboard.js / run.js (`fmt`) format hover values and live rows the same way."""
    if value is None:
        return "—"
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return str(value)
    if not math.isfinite(value):
        return "—"
    if abs(value) >= 1000:
        return f"{round(value):,}"
    if float(value).is_integer():
        return str(int(value))
    return f"{value:.{digits}g}"


def stage_badge(latest: Iterable[dict[str, Any]], config: dict[str, Any] | None) -> dict[str, Any] | None:
    """The header's curriculum badge from the newest values (`services.latest_metrics` rows):
    the `stage` event's `stage.*` (at the start of every attempt and at each promotion) or the
    metrics event's `curriculum.*`, whichever is newer (a promotion's `stage` event follows its
    step's metrics: on a tie `stage.*` wins). None before either was reported (an RLVR run has
    neither). `number` is 1-based (the event's stage is an index); `total` is the length of the
    run's `length_curriculum.stages`; `enabled` false: the curriculum is off and the run trains at
    its full context (`max_context`) from the start."""
    values: dict[str, tuple[int, int, Any]] = {}
    for row in latest:
        values[row["name"]] = (row["step"], 0 if row["name"].startswith("curriculum.") else 1, row["value"])
    best = None
    for prefix in ("stage.", "curriculum."):
        stage = values.get(prefix + "stage")
        if stage is None or stage[2] is None:
            continue
        if best is None or stage[:2] > best[0][:2]:
            best = (stage, values.get(prefix + "max_context"))
    if best is None:
        return None
    stage, context = best
    curriculum = (config or {}).get("length_curriculum") or {}
    stages = curriculum.get("stages") if isinstance(curriculum.get("stages"), list) else []
    number = int(stage[2]) + 1
    return {
        "stage": int(stage[2]), "number": number, "total": max(len(stages), number),
        "max_context": None if context is None or context[2] is None else int(context[2]),
        "enabled": bool(curriculum.get("enabled", True)), "step": stage[0],
    }
