"""Run logic: launch (validate, freeze, enqueue), controls, clone, diff, exports, files on disk.

Views call these; the worker side (claim, supervise, relay) lives in workers/supervisor.py and
workers/relay.py. Every state change is a conditional UPDATE, so a click racing the worker never
overwrites what the worker did (and the other way round).
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import logging
import os
import shutil
import zipfile
from datetime import timedelta
from pathlib import Path
from typing import Any, Iterable, Iterator

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from spell import rundir
from spell.config import ConfigError, RunConfig, describe_fields, preset as spell_preset, with_overrides
from webapp.corpora.models import EvalSet
from webapp.folders import claim_new_folder
from webapp.quotas import check_can_queue
from webapp.runs import lifecycle
from webapp.runs.models import MetricPoint, ModelEntry, Run, RunEvent, Sample

log = logging.getLogger(__name__)

PRESETS = ("cpu-demo", "paper-7b")
# Fields that come from the registered model, never from the form.
MODEL_FIELDS = ("model.path", "model.trust_remote_code")
# Knobs that hold server paths: a launch never takes them from a person (the form leaves them out,
# the API refuses them); eval.sets is filled by the worker from the run's chosen evaluation sets.
SERVER_PATH_FIELDS = ("eval.sets",)


class RunActionError(Exception):
    """A control that does not apply to the run in its current state (shown to the user)."""


# --- queues and config ------------------------------------------------------------------------


def queue_choices() -> list[str]:
    """`cpu` plus the GPU queues admins define (for now the RUN_GPU_QUEUES setting: gpu.<name>)."""
    return ["cpu"] + [q for q in getattr(settings, "RUN_GPU_QUEUES", []) if q != "cpu"]


def build_config(preset_name: str, values: dict[str, Any], model_entry: ModelEntry | None, queue: str = "cpu") -> RunConfig:
    """The config a launch freezes: preset, then the form's values, then the model entry's fields.

    Raises ConfigError (every problem in `.errors`, each naming its dotted field).
    """
    if preset_name not in PRESETS:
        raise ConfigError("preset", f"unknown preset {preset_name!r} (choices: {', '.join(PRESETS)})")
    cfg = with_overrides(spell_preset(preset_name), {k: v for k, v in values.items() if k not in MODEL_FIELDS})
    max_positions = None
    if model_entry is not None:
        cfg = with_overrides(cfg, {"model.path": model_entry.path, "model.trust_remote_code": model_entry.trust_remote_code})
        max_positions = model_entry.max_positions
    errors: list[ConfigError] = []
    try:
        cfg.validate(model_max_positions=max_positions)
    except ConfigError as exc:
        errors = list(exc.errors)
    if queue == "cpu" and cfg.trainer.device == "cuda":
        errors.append(ConfigError("trainer.device", "the cpu queue has no GPUs: choose cpu or a gpu.* queue"))
    elif cfg.trainer.device == "cuda":
        from webapp.fleet.services import gpus_serving

        have = gpus_serving(queue)  # None: no online worker serves it yet; the run waits for one
        if have is not None and have < cfg.trainer.num_gpus:
            errors.append(ConfigError("trainer.num_gpus", f"the workers serving {queue} have at most {have} GPU(s) "
                                      f"(their NVML inventory), not {cfg.trainer.num_gpus}: lower it or choose "
                                      "another queue"))
    if errors:
        errors[0].errors = errors
        raise errors[0]
    return cfg


def run_dir_for(run: Run) -> Path:
    return Path(settings.RUNS_ROOT) / f"run-{run.pk}"


def claim_run_dir(run: Run) -> Path:
    """The new run's folder, empty: one left under its name (another run's, with a checkpoint the
    worker would resume from) is moved aside (webapp/folders.py)."""
    return claim_new_folder(run_dir_for(run), f"run {run.pk}")


def queue_down_message() -> str:
    after = int(getattr(settings, "RECONCILE_AFTER_SECONDS", 120))
    return ("The task broker (Redis) is unreachable, so no worker has this run yet. It stays queued and is sent "
            f"automatically once the broker is back (queued runs no worker has claimed after {after} s are sent again).")


def _enqueue(run: Run) -> None:
    """Send the run's task after commit. When the broker is down the run stays QUEUED, the reconciler
    (webapp/reconcile.py) sends it again later, and `run.enqueue_error` says so for the page."""
    from webapp import taskqueue

    run_id, queue = run.pk, run.queue
    run.enqueue_error = ""

    def send() -> None:
        try:
            taskqueue.send(taskqueue.RUN_SPELL, [run_id], queue, retry=True,
                           retry_policy={"max_retries": 2, "interval_start": 0.2, "interval_step": 0.5})
        except Exception as exc:  # kombu OperationalError, redis ConnectionError, ...: not a 500
            log.error("could not queue run %s on %s: %s", run_id, queue, exc)
            run.enqueue_error = queue_down_message()

    transaction.on_commit(send)


def launch(*, team, name: str, corpus, model_entry: ModelEntry, config: RunConfig, preset: str, queue: str,
           user=None, cloned_from: Run | None = None, audit: dict | None = None, eval_sets=()) -> Run:
    """Save a QUEUED run with its frozen config and enqueue it on its queue after commit.
    `eval_sets`: ready evaluation sets of the run's team."""
    if queue not in queue_choices():
        raise ConfigError("queue", f"unknown queue {queue!r} (choices: {', '.join(queue_choices())})")
    config.validate(model_max_positions=model_entry.max_positions if model_entry else None)
    if model_entry is not None and model_entry.team_id not in (None, team.pk):
        raise ConfigError("model_entry", f"model {model_entry.name!r} belongs to another team")
    eval_sets = list(eval_sets)
    foreign = [s.name for s in eval_sets if s.team_id != team.pk or s.status != EvalSet.Status.READY]
    if foreign:
        raise ConfigError("eval_sets", f"not a ready evaluation set of team {team}: {', '.join(foreign)}")
    with transaction.atomic():
        type(team).objects.select_for_update().filter(pk=team.pk).first()  # launches of one team, one at a time
        check_can_queue(team)  # QuotaExceeded: the form and the API say why
        run = Run.objects.create(
            team=team, name=name, corpus=corpus, model_entry=model_entry, config=config.to_dict(), preset=preset,
            queue=queue, state=lifecycle.INITIAL, queued_at=timezone.now(), created_by=user, cloned_from=cloned_from,
            audit=audit or {},
        )
        run.run_dir = str(claim_run_dir(run))
        run.save(update_fields=["run_dir"])
        run.eval_sets.set(eval_sets)
        _enqueue(run)
    return run


def eval_sets_by_name(team, names: Iterable[str]) -> tuple[list[EvalSet], list[str]]:
    """The team's ready evaluation sets with these names, and the names that match none."""
    names = [str(n) for n in names]
    found = {s.name: s for s in EvalSet.objects.filter(team=team, status=EvalSet.Status.READY, name__in=names)}
    return [found[n] for n in names if n in found], [n for n in names if n not in found]


def frozen_config(run: Run) -> RunConfig:
    return RunConfig.from_dict(run.config)


def clone_initial(run: Run) -> dict[str, Any]:
    """Form initial values for a new run that repeats `run`."""
    return {
        "name": f"{run.name} (copy)"[:200], "preset": run.preset or "cpu-demo", "queue": run.queue,
        "corpus": run.corpus_id, "model_entry": run.model_entry_id, "config": frozen_config(run),
        "eval_sets": list(run.eval_sets.values_list("pk", flat=True)),
        **{k: v for k, v in (run.audit or {}).items() if k in ("review_share", "double_share", "false_accept_alarm")},
    }


def flatten(config: dict[str, Any]) -> dict[str, Any]:
    return {f"{sec}.{key}": value for sec, fields_ in config.items() if isinstance(fields_, dict) for key, value in fields_.items()}


def reward_sources(config: dict[str, Any]) -> dict[str, list[str]]:
    """Which tasks' responder reward uses the verifier (max(rule, majority)) and which the rule score
    alone, for the run page: {"verifier": [...], "rule": [...]} in task order."""
    from spell.config import TASKS

    selfplay = config.get("selfplay") if isinstance(config.get("selfplay"), dict) else {}
    mix = (config.get("tasks") or {}).get("mix") or dict.fromkeys(TASKS, 1.0)
    played = [t for t in TASKS if mix.get(t, 0) > 0]
    judged = set(selfplay.get("verifier_tasks", TASKS)) if selfplay.get("verifier_enabled", True) else set()
    return {"verifier": [t for t in played if t in judged], "rule": [t for t in played if t not in judged]}


def reward_note(config: dict[str, Any]) -> str:
    """The run page's one line on where the responder's reward comes from, per task."""
    sources = reward_sources(config)
    parts = []
    if sources["verifier"]:
        parts.append(f"max(rule score, verifier majority) for {', '.join(sources['verifier'])}")
    if sources["rule"]:
        them = "it" if len(sources["rule"]) == 1 else "them"
        parts.append(f"the rule score alone for {', '.join(sources['rule'])} "
                     f"(the verifier does not judge {them}: selfplay.verifier_tasks / verifier_enabled)")
    return "Responder reward: " + "; ".join(parts) + "."


def config_diff(run: Run, other: Run) -> list[dict[str, Any]]:
    """Fields whose values differ between two runs (config and launch choices), in form order."""
    rows = []
    for label, a, b in (
        ("preset", run.preset, other.preset),
        ("queue", run.queue, other.queue),
        ("model", str(run.model_entry or "-"), str(other.model_entry or "-")),
        ("corpus", str(run.corpus or "-"), str(other.corpus or "-")),
    ):
        if a != b:
            rows.append({"field": label, "this": a, "other": b})
    mine, theirs = flatten(run.config), flatten(other.config)
    order = list(describe_fields().keys())
    names = order + sorted((set(mine) | set(theirs)) - set(order))
    for name in names:
        if name in mine or name in theirs:
            a, b = mine.get(name, "—"), theirs.get(name, "—")
            if a != b:
                rows.append({"field": name, "this": a, "other": b})
    return rows


# --- state changes (webapp/runs/lifecycle.py makes them; here: what a person is told) -----------------


def cancel(run: Run) -> str:
    outcome = lifecycle.cancel(run.pk)
    if outcome == "cancelled":
        return "Run cancelled."
    if outcome == "requested":
        return "Cancelling: the worker stops the training process."
    run.refresh_from_db()
    raise RunActionError(f"A {run.get_state_display().lower()} run cannot be cancelled.")


def pause(run: Run) -> str:
    if lifecycle.request_pause(run.pk):
        return "Pausing: the run checkpoints after the current step and stops."
    run.refresh_from_db()
    if run.state == Run.State.RUNNING:
        raise RunActionError(f"The run is already being asked to {run.requested_action}.")
    raise RunActionError(f"Only a running run can be paused (this one is {run.get_state_display().lower()}).")


def resume(run: Run) -> str:
    """A new attempt, queued again; the worker passes --resume when a checkpoint exists."""
    with transaction.atomic():
        if lifecycle.resume(run.pk):
            run.refresh_from_db()
            _enqueue(run)
            where = f"from checkpoint {latest_checkpoint(run)}" if latest_checkpoint(run) else "from the start (no checkpoint yet)"
            message = f"Resumed {where}: queued on {run.queue}."
        else:
            message = ""
    if message:  # after the commit: the task has been sent, or enqueue_error says why not
        return f"{message} {run.enqueue_error}" if run.enqueue_error else message
    run.refresh_from_db()
    raise RunActionError(f"Only a paused, failed or lost run can be resumed (this one is {run.get_state_display().lower()}).")


def requeue(run: Run, *, auto: bool = False) -> bool:
    """For the fleet sweeper (auto=True, at most RUN_MAX_AUTO_REQUEUES times) and admins: LOST (or
    FAILED, by hand) -> QUEUED, continuing from the last checkpoint. False when it does not apply."""
    with transaction.atomic():
        if not lifecycle.requeue(run.pk, auto=auto):
            return False
        run.refresh_from_db()
        _enqueue(run)
    return True


def mark_lost(run: Run, reason: str = "") -> bool:
    """For the fleet sweeper: a RUNNING run whose worker stopped heartbeating becomes LOST."""
    return lifecycle.mark_lost(run.pk, reason or "The worker stopped heartbeating.")


# --- checkpoints, logs, files -------------------------------------------------------------------


def checkpoints(run: Run) -> list[dict[str, Any]]:
    """The run's complete checkpoints (spell/rundir.py: the rule a resume uses), oldest first."""
    if not run.path:
        return []
    latest = latest_checkpoint(run)
    return [{"name": d.name, "step": rundir.checkpoint_step(d.name), "latest": d.name == latest, "bytes": disk_usage(d)}
            for d in rundir.list_checkpoints(run.path / rundir.CHECKPOINTS)]


def latest_checkpoint(run: Run) -> str | None:
    """The checkpoint a resume continues from (None: from the start)."""
    latest = rundir.latest_checkpoint(run.path / rundir.CHECKPOINTS) if run.path else None
    return latest.name if latest is not None else None


def checkpoint_model_dir(run: Run, name: str) -> Path:
    """The model/ folder of one checkpoint; ValueError for a name that is not one of the run's."""
    names = {c["name"] for c in checkpoints(run)}
    if name not in names:
        raise ValueError(f"no checkpoint {name!r} in this run")
    return run.path / rundir.CHECKPOINTS / name / rundir.MODEL_DIR


class _Sink:
    """A write-only buffer zipfile writes into (unseekable: zipfile streams with data descriptors)."""

    def __init__(self):
        self.chunks: list[bytes] = []

    def write(self, data) -> int:
        self.chunks.append(bytes(data))
        return len(data)

    def flush(self) -> None:
        pass

    def take(self) -> bytes:
        data = b"".join(self.chunks)
        self.chunks.clear()
        return data


def zip_folder_stream(folder: Path, arcroot: str, chunk: int = 1 << 20) -> Iterator[bytes]:
    """A zip of `folder` (stored, not compressed: weights do not shrink), produced piece by piece."""
    sink = _Sink()
    with zipfile.ZipFile(sink, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as zf:
        for path in sorted(p for p in folder.rglob("*") if p.is_file()):
            info = zipfile.ZipInfo.from_file(path, f"{arcroot}/{path.relative_to(folder).as_posix()}")
            with open(path, "rb") as src, zf.open(info, "w", force_zip64=True) as dst:
                while data := src.read(chunk):
                    dst.write(data)
                    yield sink.take()
            yield sink.take()
    yield sink.take()


def register_checkpoint(run: Run, checkpoint: str, name: str, user=None) -> ModelEntry:
    """Register a checkpoint's model folder as a model of the run's team (for evaluation or a new
    run). The folder is copied (hard-linked where the file system allows) under
    MODEL_ROOT/registered/, so the model outlives `keep_last` rotation, run deletion and retention;
    its checksum is kept. ValueError with the reason for a name that cannot be used."""
    folder = checkpoint_model_dir(run, checkpoint)
    name = name.strip()
    if not name:
        raise ValueError("a model name is required")
    if len(name) > ModelEntry.NAME_MAX:
        raise ValueError(f"a model name has at most {ModelEntry.NAME_MAX} characters (this one has {len(name)})")
    if "\x00" in name:
        raise ValueError("a model name cannot hold a NUL character")
    if ModelEntry.objects.filter(name=name).exists():
        raise ValueError(f"the name {name!r} is taken: choose another")
    target = Path(settings.MODEL_ROOT) / "registered" / f"run-{run.pk}-{checkpoint}-{timezone.now():%Y%m%d%H%M%S%f}"
    copy_model_folder(folder, target)
    base = run.model_entry
    try:
        return ModelEntry.objects.create(
            name=name, team=run.team, path=str(target), sha256=folder_sha256(target),
            max_positions=base.max_positions if base else None,
            trust_remote_code=base.trust_remote_code if base else False, created_by=user,
            description=f"Checkpoint {checkpoint} of run #{run.pk} {run.name} (team {run.team}).",
        )
    except Exception:
        shutil.rmtree(target, ignore_errors=True)  # no entry: no orphan copy
        raise


def copy_model_folder(source: Path, target: Path) -> None:
    """`source` into a new folder `target`, each file hard-linked when the file system allows it
    (weights are large and never rewritten in place), copied otherwise; all or nothing."""
    scratch = target.with_name(target.name + ".partial")
    shutil.rmtree(scratch, ignore_errors=True)
    for path in sorted(p for p in source.rglob("*") if p.is_file()):
        dest = scratch / path.relative_to(source)
        dest.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.link(path, dest)
        except OSError:
            shutil.copy2(path, dest)
    os.replace(scratch, target)


def folder_sha256(folder: Path) -> str:
    """SHA-256 over the folder's files: each relative path, then its bytes, in path order."""
    digest = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        digest.update(path.relative_to(folder).as_posix().encode() + b"\0")
        with open(path, "rb") as f:
            while chunk := f.read(1 << 20):
                digest.update(chunk)
    return digest.hexdigest()


def disk_usage(path: Path | None) -> int:
    if not path or not Path(path).exists():
        return 0
    total = 0
    for p in Path(path).rglob("*"):
        try:
            if p.is_file() and not p.is_symlink():
                total += p.stat().st_size
        except OSError:
            continue
    return total


def refresh_disk_usage(run: Run) -> int:
    run.disk_bytes = disk_usage(run.path)
    Run.objects.filter(pk=run.pk).update(disk_bytes=run.disk_bytes)
    return run.disk_bytes


def people_labels(run: Run) -> dict[str, int]:
    """What deleting the run takes from its annotators: their labels and how many people wrote them."""
    from webapp.audits.models import Label

    labels = Label.objects.filter(item__run=run)
    return {"labels": labels.count(), "annotators": labels.values("annotator").distinct().count()}


def delete_run(run: Run) -> None:
    """Delete a run, its events, samples, metrics and its folder. Active runs must be cancelled first."""
    if Run.objects.filter(pk=run.pk, state__in=Run.ACTIVE).exists():
        raise RunActionError("Cancel the run before deleting it (a queued or running run still uses its files).")
    with transaction.atomic():
        Run.objects.filter(pk=run.pk).delete()  # its folder goes after the commit (models._delete_run_folder)


def apply_retention(now=None) -> dict[str, int]:
    """Free disk from old finished runs: after RUN_RETENTION_DAYS (0 = keep forever) the checkpoints
    of SUCCEEDED / FAILED / CANCELLED runs are deleted except the latest one; the database rows
    (events, samples, metrics) stay. Returns counts for the housekeeping log."""
    days = int(getattr(settings, "RUN_RETENTION_DAYS", 0) or 0)
    if days <= 0:
        return {"runs": 0, "checkpoints": 0}
    cutoff = (now or timezone.now()) - timedelta(days=days)
    pruned = runs = 0
    for run in Run.objects.filter(state__in=Run.TERMINAL, finished_at__lt=cutoff).exclude(run_dir=""):
        latest = latest_checkpoint(run)
        removed = 0
        for ckpt in checkpoints(run):
            if ckpt["name"] != latest and run.owned_folder():
                shutil.rmtree(run.path / rundir.CHECKPOINTS / ckpt["name"], ignore_errors=True)
                removed += 1
        if removed:
            runs += 1
            pruned += removed
            refresh_disk_usage(run)
    return {"runs": runs, "checkpoints": pruned}


def log_path(run: Run, attempt: int | None = None) -> Path | None:
    if not run.path:
        return None
    attempt = attempt or run.attempt
    return rundir.attempt_log(run.path, attempt) if attempt else None


def log_tail(run: Run, max_bytes: int = 20000) -> str:
    path = log_path(run)
    if not path or not path.exists():
        return ""
    with open(path, "rb") as f:
        size = f.seek(0, 2)
        f.seek(max(0, size - max_bytes))
        return f.read().decode("utf-8", "replace")


# --- reading what the process reported -----------------------------------------------------------


def events_after(run: Run, after: int, limit: int = 500, include_superseded: bool = True) -> list[dict[str, Any]]:
    qs = RunEvent.objects.filter(run=run, seq__gt=after).order_by("seq")
    if not include_superseded:
        qs = qs.filter(superseded=False)
    return [e.to_message() for e in qs[:limit]]


SAMPLE_FILTERS = ("task", "step", "attempt", "verdict", "disagreement", "split_votes", "superseded")


def filter_samples(run: Run, params: dict[str, str]):
    """Samples of a run filtered by query parameters; raises ValueError for a bad value."""
    qs = Sample.objects.filter(run=run)
    if params.get("superseded") not in ("1", "true", "all"):
        qs = qs.filter(superseded=False)
    if params.get("task"):
        qs = qs.filter(task=params["task"])
    if params.get("verdict"):
        qs = qs.filter(Q(verdict=params["verdict"]) | Q(majority=params["verdict"]))
    for name in ("step", "attempt"):
        if params.get(name):
            try:
                qs = qs.filter(**{name: int(params[name])})
            except ValueError:
                raise ValueError(f"{name} must be an integer") from None
    for name in ("disagreement", "split_votes"):
        if params.get(name):
            value = params[name].lower()
            if value not in ("1", "0", "true", "false"):
                raise ValueError(f"{name} must be 1 or 0")
            qs = qs.filter(**{name: value in ("1", "true")})
    return qs


def samples_page(run: Run, params: dict[str, str], limit: int = 50) -> dict[str, Any]:
    """Keyset pagination by id: ?after_id=N returns the next `limit` samples with id > N."""
    try:
        after_id = int(params.get("after_id") or 0)
        limit = max(1, min(int(params.get("limit") or limit), 500))
    except ValueError:
        raise ValueError("after_id and limit must be integers") from None
    rows = list(filter_samples(run, params).filter(id__gt=after_id).order_by("id")[: limit + 1])
    more = len(rows) > limit
    rows = rows[:limit]
    return {"samples": [s.to_dict() for s in rows], "next_after_id": rows[-1].id if rows else after_id, "more": more}


# PostgreSQL: the names by a loose index scan of (run, name, step) and each name's newest point by
# one index probe, instead of reading every point of a long run (100k points: ~300 ms -> a few ms).
_LATEST_METRICS_SQL = """
WITH RECURSIVE names AS (
    (SELECT name FROM runs_metricpoint WHERE run_id = %(run)s ORDER BY name LIMIT 1)
    UNION ALL
    SELECT (SELECT m.name FROM runs_metricpoint m WHERE m.run_id = %(run)s AND m.name > names.name
            ORDER BY m.name LIMIT 1)
    FROM names WHERE names.name IS NOT NULL
)
SELECT n.name, p.step, p.value FROM names n CROSS JOIN LATERAL (
    SELECT step, value FROM runs_metricpoint m WHERE m.run_id = %(run)s AND m.name = n.name AND NOT m.superseded
    ORDER BY m.step DESC, m.seq DESC LIMIT 1
) p WHERE n.name IS NOT NULL ORDER BY n.name
"""


def latest_metrics(run: Run) -> list[dict[str, Any]]:
    """The newest value of each metric name (not superseded)."""
    from django.db import connection

    if connection.vendor == "postgresql":
        with connection.cursor() as cur:
            cur.execute(_LATEST_METRICS_SQL, {"run": run.pk})
            rows = [{"name": name, "step": step, "value": value} for name, step, value in cur.fetchall()]
        return sorted(rows, key=lambda r: r["name"])  # Python's order, not the collation's
    latest: dict[str, dict[str, Any]] = {}
    qs = MetricPoint.objects.filter(run=run, superseded=False).order_by("seq").values("name", "step", "value")
    for point in qs.iterator():
        latest[point["name"]] = point
    return [latest[k] for k in sorted(latest)]


def metrics_rows(run: Run, include_superseded: bool = False) -> Iterable[dict[str, Any]]:
    qs = MetricPoint.objects.filter(run=run)
    if not include_superseded:
        qs = qs.filter(superseded=False)
    return qs.order_by("step", "seq", "name").values("step", "attempt", "name", "value", "seq").iterator()


def metrics_csv(run: Run) -> Iterator[str]:
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(["step", "attempt", "name", "value"])
    for row in metrics_rows(run):
        writer.writerow([row["step"], row["attempt"], row["name"], "" if row["value"] is None else repr(row["value"])])
        if buf.tell() > 65536:
            yield buf.getvalue()
            buf.seek(0)
            buf.truncate()
    yield buf.getvalue()


def metrics_json(run: Run) -> dict[str, Any]:
    series: dict[str, list[list[Any]]] = {}
    for row in metrics_rows(run):
        series.setdefault(row["name"], []).append([row["step"], row["value"]])
    return {"run": run.pk, "name": run.name, "state": run.state, "metrics": series}


def samples_jsonl(run: Run) -> Iterator[str]:
    qs = Sample.objects.filter(run=run, superseded=False).order_by("id")
    for sample in qs.iterator(chunk_size=1000):
        yield json.dumps(sample.to_dict(), ensure_ascii=False) + "\n"
