"""Experiment trackers: `run.report_to`, as transformers and TRL have it (off by default: []).

    check_report_to(cfg.run.report_to)        # before anything is written: ConfigError naming the pip package
    trackers = Trackers.from_config(cfg, out, attempt=1, start_step=0, events=writer)
    writer.emit("metrics", payload, step=k)   # a metrics / eval / stage event reaches every tracker too
    trackers.close()                          # in a finally: flushes and ends the tracker runs

Backends, each only when its package is importable:
- `tensorboard`: event files in OUT/tensorboard (torch.utils.tensorboard; the `tensorboard` package).
  A resumed attempt hides the points an earlier attempt logged after its checkpoint (purge_step).
- `wandb`: offline, under OUT/wandb (`wandb sync OUT/wandb/offline-run-*` uploads it later), unless
  WANDB_MODE is set and an API key is found (WANDB_API_KEY or a `wandb login`). WANDB_PROJECT names
  the project (default `spell`). One W&B run per attempt, named and grouped by the run folder.
- `mlflow`: a local file store in OUT/mlruns unless MLFLOW_TRACKING_URI is set (`mlflow-skinny` is
  enough); MLFLOW_EXPERIMENT_NAME names the experiment (default `spell`). One MLflow run per attempt.

Metric names are the dashboard's: `metric_values(payload, METRIC_PREFIX[type])` of every `metrics`,
`eval` and `stage` event (`reward.responder`, `eval.mean`, `stage.max_context`), at the event's step;
null values are skipped. MLflow refuses some characters in names: there `@` becomes `_at_`
(`mean@k` -> `mean_at_k`) and any other refused character `_`. The run config is logged once as
hyperparameters / params (flattened to dotted names; lists and null as JSON text).

A tracker that fails (a full disk, a server gone) logs one warning event and is off for the rest of
the run: training never stops for a tracker.
"""

from __future__ import annotations

import importlib
import json
import math
import os
import re
import sys
import threading
import time
from pathlib import Path
from typing import Any, Iterable

from spell.config import REPORT_TO, ConfigError, RunConfig
from spell.events import METRIC_PREFIX, metric_values

# tracker -> (module to import, pip package that provides it)
PACKAGES: dict[str, tuple[str, str]] = {
    "tensorboard": ("tensorboard", "tensorboard"),
    "wandb": ("wandb", "wandb"),
    "mlflow": ("mlflow", "mlflow-skinny"),
}


def check_report_to(names: Iterable[str]) -> None:
    """ConfigError("run.report_to", ...) for an unknown tracker or one whose package cannot be
    imported (the message names what to pip install); None when every one can start."""
    missing = []
    for name in dict.fromkeys(names):
        if name not in PACKAGES:
            raise ConfigError("run.report_to", f"unknown tracker {name!r} (choices: {', '.join(REPORT_TO)})")
        module, package = PACKAGES[name]
        try:
            importlib.import_module(module)
        except Exception as exc:  # noqa: BLE001 - missing or broken: the same advice
            why = "is not installed" if isinstance(exc, ImportError) else f"does not import ({type(exc).__name__}: {exc})"
            missing.append(f"{name} needs the {package} package, which {why}: pip install {package}")
    if missing:
        raise ConfigError("run.report_to", "; ".join(missing) + " (or all of them: pip install 'spell-studio[trackers]')")


def flat_params(config: dict[str, Any], prefix: str = "") -> dict[str, bool | int | float | str]:
    """A nested config as {dotted name: scalar}; lists, null and non-finite numbers as JSON text."""
    out: dict[str, bool | int | float | str] = {}
    for key, value in config.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(flat_params(value, name + "."))
        elif isinstance(value, (bool, int, str)) or (isinstance(value, float) and math.isfinite(value)):
            out[name] = value
        else:
            out[name] = json.dumps(value, default=str)
    return out


# ---------------------------------------------------------------------------------------------
# Backends: each logs the config when it starts, then metrics by step, then closes.
# ---------------------------------------------------------------------------------------------


class TensorBoardTracker:
    name = "tensorboard"

    def __init__(self, out: Path, *, config: dict[str, Any], attempt: int = 1, start_step: int = 0):
        from torch.utils.tensorboard import SummaryWriter
        from torch.utils.tensorboard.summary import hparams

        self.logdir = Path(out) / "tensorboard"
        # A resumed attempt restarts after its checkpoint's step: points an earlier attempt wrote
        # past it (lost work) are hidden, not drawn twice.
        self.writer = SummaryWriter(log_dir=str(self.logdir), purge_step=start_step + 1 if start_step > 0 else None)
        file_writer = self.writer._get_file_writer()
        for summary in hparams(flat_params(config), {}):  # the HParams tab: the run's config
            file_writer.add_summary(summary)
        self.writer.add_text("config", "```json\n" + json.dumps(config, indent=1) + "\n```", global_step=start_step)
        self.writer.flush()

    def log(self, values: dict[str, float], step: int) -> None:
        for key, value in values.items():
            self.writer.add_scalar(key, value, global_step=step)
        self.writer.flush()

    def close(self, status: str) -> None:  # noqa: ARG002
        self.writer.close()


def wandb_mode() -> str:
    """`offline` unless WANDB_MODE asks for another mode and an API key is there to use it."""
    mode = os.environ.get("WANDB_MODE", "").strip().lower()
    if mode in ("offline", "disabled", "dryrun"):
        return mode
    if mode and _wandb_api_key():
        return mode
    return "offline"


def _wandb_api_key() -> bool:
    import netrc
    from urllib.parse import urlparse

    if os.environ.get("WANDB_API_KEY", "").strip():
        return True
    try:
        host = urlparse(os.environ.get("WANDB_BASE_URL") or "https://api.wandb.ai").hostname or "api.wandb.ai"
        entry = netrc.netrc(os.environ.get("NETRC") or None).authenticators(host)
        return bool(entry and entry[2])
    except (OSError, netrc.NetrcParseError, ValueError):
        return False


class WandbTracker:
    name = "wandb"

    def __init__(self, out: Path, *, config: dict[str, Any], attempt: int = 1, start_step: int = 0):  # noqa: ARG002
        import wandb

        out = Path(out)
        self.mode = wandb_mode()
        self.run = wandb.init(
            project=os.environ.get("WANDB_PROJECT") or "spell", name=out.name, group=out.name, job_type="train",
            dir=str(out), mode=self.mode, config={**config, "spell": {"attempt": attempt, "out": str(out)}},
            # The process's own stdout / stderr (progress lines, the worker's log) stay as they are.
            settings=wandb.Settings(console="off"),
        )

    def log(self, values: dict[str, float], step: int) -> None:
        self.run.log(values, step=step)

    def close(self, status: str) -> None:
        self.run.finish(exit_code={"failed": 1, "killed": 143}.get(status, 0))


_MLFLOW_REFUSED = re.compile(r"[^\w./\- :]")


def mlflow_name(name: str) -> str:
    """A metric name MLflow accepts (alphanumerics, _ - . / space and colon): `@` -> `_at_`."""
    return _MLFLOW_REFUSED.sub("_", name.replace("@", "_at_"))


class MLflowTracker:
    name = "mlflow"
    MAX_PARAM_VALUE = 6000  # MLflow's limit on a param value's length

    def __init__(self, out: Path, *, config: dict[str, Any], attempt: int = 1, start_step: int = 0):  # noqa: ARG002
        from mlflow.entities import Param
        from mlflow.tracking import MlflowClient

        out = Path(out)
        uri = os.environ.get("MLFLOW_TRACKING_URI", "").strip()
        if not uri:
            # MLflow 3 keeps the file store in maintenance and refuses it unless asked: this local
            # store is what the user gets without a tracking server (a tracking URI skips it).
            os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
            uri = (out / "mlruns").resolve().as_uri()
        self.uri = uri
        self.client = MlflowClient(tracking_uri=uri)
        experiment_name = os.environ.get("MLFLOW_EXPERIMENT_NAME") or "spell"
        experiment = self.client.get_experiment_by_name(experiment_name)
        if experiment is not None:
            experiment_id = experiment.experiment_id
        else:
            try:
                experiment_id = self.client.create_experiment(experiment_name)
            except Exception:  # noqa: BLE001 - created meanwhile by another run
                experiment_id = self.client.get_experiment_by_name(experiment_name).experiment_id
        run = self.client.create_run(experiment_id, run_name=out.name, tags={"spell.attempt": str(attempt), "spell.out": str(out)})
        self.run_id = run.info.run_id
        params = [Param(key, str(value)[: self.MAX_PARAM_VALUE]) for key, value in flat_params(config).items()]
        for i in range(0, len(params), 100):  # MLflow takes at most 100 params a batch
            self.client.log_batch(self.run_id, params=params[i : i + 100])

    def log(self, values: dict[str, float], step: int) -> None:
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        metrics = [Metric(mlflow_name(key), value, now, step) for key, value in values.items()]
        for i in range(0, len(metrics), 1000):  # at most 1000 metrics a batch
            self.client.log_batch(self.run_id, metrics=metrics[i : i + 1000])

    def close(self, status: str) -> None:
        self.client.set_terminated(self.run_id, status={"failed": "FAILED", "killed": "KILLED"}.get(status, "FINISHED"))


BACKENDS: dict[str, type] = {"tensorboard": TensorBoardTracker, "wandb": WandbTracker, "mlflow": MLflowTracker}


# ---------------------------------------------------------------------------------------------
# The fan-out
# ---------------------------------------------------------------------------------------------


class Trackers:
    """Every tracker of `run.report_to`; a failing one warns once (a `log` event, level warning)
    and is dropped. Empty (does nothing) when report_to is [] or the writer is a disabled rank's."""

    def __init__(self, trackers: Iterable[Any] = (), events: Any = None):
        self.trackers = list(trackers)
        self.events = events
        # How the run ended, for the trackers' run status: "failed" after an `error` event,
        # "killed" after the `cancelled` log, else "finished".
        self.status = "finished"
        self._lock = threading.Lock()

    @classmethod
    def from_config(
        cls, cfg: RunConfig, out: str | os.PathLike, *, attempt: int = 1, start_step: int = 0, events: Any = None
    ) -> "Trackers":
        """Start the trackers of cfg.run.report_to in `out` and follow `events` (see follow()).
        Only where the writer is enabled: rank 0 of a multi-GPU run."""
        names = list(dict.fromkeys(cfg.run.report_to))
        if not names or (events is not None and not events.enabled):
            return cls([], events)
        check_report_to(names)
        trackers = cls([], events)
        config = cfg.to_dict()
        for name in names:
            try:
                trackers.trackers.append(BACKENDS[name](Path(out), config=config, attempt=attempt, start_step=start_step))
            except Exception as exc:  # noqa: BLE001 - a tracker never stops the run
                trackers._warn(name, "could not start and is off for this run", exc, step=start_step)
        if events is not None:
            trackers.follow(events)
        return trackers

    def __bool__(self) -> bool:
        return bool(self.trackers)

    @property
    def names(self) -> list[str]:
        return [t.name for t in self.trackers]

    def follow(self, events: Any) -> None:
        """Wrap `events.emit` (this writer only) so that each metrics / eval / stage event it writes
        also goes to the trackers, with the payload as written (NaN already null)."""
        emit = events.emit

        def emit_and_track(type: str, payload: dict[str, Any] | None = None, *, step: int | None = None):
            event = emit(type, payload, step=step)
            if event is not None:
                self.log_event(event.type, event.payload, event.step)
            return event

        events.emit = emit_and_track

    def log_event(self, type: str, payload: dict[str, Any], step: int) -> None:
        if type == "error":
            self.status = "failed"
        elif type == "log" and payload.get("message") == "cancelled":
            self.status = "killed"
        if type not in METRIC_PREFIX or not self.trackers:
            return
        values = {k: v for k, v in metric_values(payload, METRIC_PREFIX[type]).items() if v is not None}
        if values:
            self.log(values, step)

    def log(self, values: dict[str, float], step: int) -> None:
        with self._lock:
            for tracker in list(self.trackers):
                try:
                    tracker.log(values, step)
                except Exception as exc:  # noqa: BLE001 - a tracker never stops the run
                    self.trackers.remove(tracker)
                    self._warn(tracker.name, "failed and is off for the rest of the run", exc, step=step)
                    _close_quietly(tracker, "failed")

    def close(self) -> None:
        """Flush and end every tracker (a failing close warns); safe to call twice."""
        with self._lock:
            trackers, self.trackers = self.trackers, []
            for tracker in trackers:
                try:
                    tracker.close(self.status)
                except Exception as exc:  # noqa: BLE001
                    self._warn(tracker.name, "failed to close (its last points may be missing)", exc)

    def _warn(self, name: str, what: str, exc: BaseException, step: int | None = None) -> None:
        message = f"report_to {name} {what}"
        error = f"{type(exc).__name__}: {exc}"[:500]
        print(f"spell: warning: {message}: {error}", file=sys.stderr, flush=True)
        if self.events is None:
            return
        try:
            self.events.log(message, level="warning", step=step, tracker=name, error=error)
        except Exception:  # noqa: BLE001 - the event stream's own failure is the loop's to report
            pass


def _close_quietly(tracker: Any, status: str) -> None:
    try:
        tracker.close(status)
    except Exception:  # noqa: BLE001
        pass
