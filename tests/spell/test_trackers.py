"""`run.report_to`: TensorBoard, W&B (offline) and MLflow (local store) get the dashboard's metric
names from a real 2-step run of the tiny model; a missing package is a config error; a failing
tracker warns once and the run goes on."""

from __future__ import annotations

import glob
import importlib.util
import json
import struct
import subprocess
import sys
from pathlib import Path

import pytest

from spell.config import ConfigError, RunConfig, preset, validate, with_overrides
from spell.events import EventWriter, metric_values, read_events
from spell.trackers import TensorBoardTracker, Trackers, check_report_to, flat_params, mlflow_name
from spell.train import TrainOptions, resolve_config, train
from tests.spell.test_selfplay import tiny_corpus_records
from tests.spell.test_train import ROOT, _run, corpus, env, tiny_path, train_args  # noqa: F401 - fixtures

# ---------------------------------------------------------------------------------------------
# Config
# ---------------------------------------------------------------------------------------------


def test_report_to_is_off_by_default_and_names_known_trackers():
    assert RunConfig().run.report_to == [] and preset("cpu-demo").run.report_to == []
    cfg = with_overrides(preset("cpu-demo"), {"run.report_to": ["tensorboard", "neptune"]})
    errors = [e for e in validate(cfg) if e.field == "run.report_to"]
    assert [e.reason for e in errors] == ["unknown tracker 'neptune' (choices: tensorboard, wandb, mlflow)"]
    with pytest.raises(ConfigError, match="expected a list"):
        with_overrides(cfg, {"run.report_to": "tensorboard"})
    # A run config stored before the knob existed reads as "no trackers", which is what it did.
    stored = preset("cpu-demo").to_dict()
    del stored["run"]["report_to"]
    assert RunConfig.from_dict(stored).run.report_to == []


@pytest.mark.parametrize("name, package", [("tensorboard", "tensorboard"), ("wandb", "wandb"), ("mlflow", "mlflow-skinny")])
def test_a_missing_package_is_a_config_error_naming_what_to_install(monkeypatch, name, package):
    monkeypatch.setitem(sys.modules, name, None)  # import fails as if not installed
    with pytest.raises(ConfigError) as exc:
        check_report_to(["tensorboard", "wandb", "mlflow"])
    assert exc.value.field == "run.report_to"
    assert f"{name} needs the {package} package, which is not installed: pip install {package}" in exc.value.reason
    with pytest.raises(ConfigError, match="unknown tracker 'neptune'"):
        check_report_to(["neptune"])


def test_train_refuses_a_missing_tracker_before_writing_anything(tiny_path, corpus, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "mlflow", None)
    cfg = resolve_config(config_path=None, preset_name="cpu-demo", model=str(tiny_path), overrides={"run.report_to": ["mlflow"]})
    with pytest.raises(ConfigError, match="pip install mlflow-skinny"):
        train(cfg, TrainOptions(corpus=corpus, out=tmp_path / "run", progress=False))
    assert not (tmp_path / "run").exists()


def test_the_cli_exits_2_with_the_message(tiny_path, corpus, tmp_path):
    # A `wandb` that cannot be imported, first on the path of the child process.
    fake = tmp_path / "fake"
    (fake / "wandb").mkdir(parents=True)
    (fake / "wandb" / "__init__.py").write_text("raise ImportError('No module named wandb')\n")
    child_env = {**env(), "PYTHONPATH": f"{fake}:{ROOT}"}
    proc = subprocess.run(train_args(tiny_path, corpus, tmp_path / "run", 2, "--set", 'run.report_to=["wandb"]'),
                          cwd=ROOT, env=child_env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "spell train: error: run.report_to: wandb needs the wandb package, which is not installed: pip install wandb" in proc.stderr
    assert not (tmp_path / "run").exists()


def test_the_config_is_flattened_for_params():
    flat = flat_params(preset("cpu-demo").to_dict())
    assert flat["selfplay.group_size"] == 4 and flat["run.report_to"] == "[]"
    assert flat["model.max_positions"] == "null" and flat["optim.betas"] == "[0.9, 0.999]"
    assert all(isinstance(v, (bool, int, float, str)) for v in flat.values())


# ---------------------------------------------------------------------------------------------
# The fan-out, with stand-in trackers
# ---------------------------------------------------------------------------------------------


class Recorder:
    def __init__(self, name="recorder", fail_after=None):
        self.name, self.fail_after = name, fail_after
        self.logged: list[tuple[int, dict]] = []
        self.closed: list[str] = []

    def log(self, values, step):
        if self.fail_after is not None and len(self.logged) >= self.fail_after:
            raise OSError(28, "No space left on device")
        self.logged.append((step, dict(values)))

    def close(self, status):
        self.closed.append(status)


def test_metrics_eval_and_stage_events_reach_the_trackers_under_the_dashboards_names(tmp_path):
    writer = EventWriter(tmp_path / "events.jsonl")
    ok, broken = Recorder("ok"), Recorder("broken", fail_after=1)
    trackers = Trackers([ok, broken], writer)
    trackers.follow(writer)
    writer.emit("stage", {"reason": "start", "stage": 0, "max_context": 2048, "stages": [2048], "rolling_accuracy": None}, step=0)
    writer.emit("metrics", {"reward": {"responder": 0.5, "questioner": float("nan")}, "batch": {"updated": 1}}, step=1)
    writer.emit("sample", {"question": "q", "rewards": {"responder": 1.0}}, step=1)
    writer.emit("eval", {"sets": {"towns": {"items": 3, "mean@k": 0.25, "item_means": [0, 0.5, 0.25]}}, "mean": 0.25}, step=1)
    writer.emit("error", {"message": "RuntimeError: boom", "kind": "crash"}, step=1)
    trackers.close()
    writer.close()
    assert ok.logged == [
        (0, {"stage.stage": 0.0, "stage.max_context": 2048.0}),  # null rolling_accuracy left out
        (1, {"reward.responder": 0.5, "batch.updated": 1.0}),    # NaN was written as null: left out
        (1, {"eval.sets.towns.items": 3.0, "eval.sets.towns.mean@k": 0.25, "eval.mean": 0.25}),
    ]
    assert ok.closed == ["failed"]  # the error event: the run failed
    # the broken one: one warning event, dropped (no more calls, closed as failed), the rest went on
    assert len(broken.logged) == 1 and broken.closed == ["failed"]
    warnings = [e["payload"] for e in read_events(writer.path) if e["type"] == "log" and e["payload"]["level"] == "warning"]
    assert warnings == [{"message": "report_to broken failed and is off for the rest of the run", "level": "warning",
                         "tracker": "broken", "error": "OSError: [Errno 28] No space left on device"}]


def test_a_disabled_writer_gets_no_trackers(tmp_path):
    cfg = with_overrides(preset("cpu-demo"), {"run.report_to": ["tensorboard"]})
    trackers = Trackers.from_config(cfg, tmp_path, events=EventWriter(tmp_path / "e.jsonl", enabled=False))
    assert not trackers and not (tmp_path / "tensorboard").exists()


# ---------------------------------------------------------------------------------------------
# TensorBoard, for real
# ---------------------------------------------------------------------------------------------


def scalars(logdir):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(logdir), size_guidance={"scalars": 0, "tensors": 0})
    acc.Reload()
    return acc, {tag: [(s.step, s.value) for s in acc.Scalars(tag)] for tag in acc.Tags()["scalars"]}


@pytest.fixture(scope="module")
def tracked_run(tiny_path, tmp_path_factory):
    """One real 2-step run of the tiny model reporting to every installed tracker (one run for all
    of them: a tiny run is most of these tests' time). W&B without a key, so offline."""
    names = [name for name in ("tensorboard", "wandb", "mlflow") if importlib.util.find_spec(name) is not None]
    if not names:
        pytest.skip("no tracker package installed")
    tmp = tmp_path_factory.mktemp("tracked")
    with pytest.MonkeyPatch.context() as monkeypatch:
        offline_env(monkeypatch, tmp)
        out = tmp / "run"
        events = _run(tiny_path, write_corpus(tmp / "corpus.jsonl"), out, steps=2, **{"run.report_to": names})
    metrics = {e["step"]: metric_values(e["payload"]) for e in events if e["type"] == "metrics"}
    assert sorted(metrics) == [1, 2]
    return out, events, metrics


def write_corpus(path):
    with open(path, "w") as f:
        for r in tiny_corpus_records():
            f.write(json.dumps({"id": r.id, "text": r.text, "title": r.title, "cluster": r.cluster, "numeric": r.numeric}) + "\n")
    return path


def test_tensorboard_holds_the_reward_scalars_of_a_two_step_tiny_run(tracked_run):
    pytest.importorskip("tensorboard")
    out, events, metrics = tracked_run
    acc, got = scalars(out / "tensorboard")
    for name in ("reward.responder", "reward.questioner"):
        assert [step for step, _ in got[name]] == [1, 2], name
        assert [value for _, value in got[name]] == pytest.approx([metrics[1][name], metrics[2][name]], rel=1e-6)
    # every number of every metrics event is there, under the dashboard's name
    for step, values in metrics.items():
        for name, value in values.items():
            if value is not None:
                assert (step, pytest.approx(value, rel=1e-5, abs=1e-6)) in got[name], name
    assert got["stage.max_context"] == [(0, 2048.0)]
    # the config, once: the HParams plugin's experiment and the text tab
    assert "_hparams_/experiment" in acc.summary_metadata and "config/text_summary" in acc.Tags()["tensors"]
    assert not [e for e in events if e["type"] == "log" and e["payload"]["level"] == "warning"]


def test_a_resumed_attempt_replaces_the_points_after_its_checkpoint(tmp_path):
    pytest.importorskip("tensorboard")
    config = preset("cpu-demo").to_dict()
    first = TensorBoardTracker(tmp_path, config=config)
    for step in (1, 2, 3):
        first.log({"reward.responder": float(step)}, step)
    first.close("killed")
    second = TensorBoardTracker(tmp_path, config=config, attempt=2, start_step=1)  # resumed from step 1
    for step in (2, 3):
        second.log({"reward.responder": 10.0 * step}, step)
    second.close("finished")
    _, got = scalars(tmp_path / "tensorboard")
    assert got["reward.responder"] == [(1, 1.0), (2, 20.0), (3, 30.0)]


def test_a_tracker_failing_mid_run_warns_once_and_the_run_finishes(tiny_path, corpus, tmp_path, monkeypatch):
    pytest.importorskip("tensorboard")
    calls = []

    def full_disk(self, values, step):
        calls.append(step)
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(TensorBoardTracker, "log", full_disk)
    events = _run(tiny_path, corpus, tmp_path / "run", steps=1, **{"run.report_to": ["tensorboard"]})  # exit 0
    assert calls == [0]  # the stage event at step 0 failed; nothing was tried after
    warnings = [e["payload"] for e in events if e["type"] == "log" and e["payload"]["level"] == "warning"]
    assert [w["message"] for w in warnings] == ["report_to tensorboard failed and is off for the rest of the run"]
    assert [e["step"] for e in events if e["type"] == "metrics"] == [1]
    assert events[-1]["payload"]["message"] == "finished"


# ---------------------------------------------------------------------------------------------
# W&B (offline) and MLflow (local file store), when installed
# ---------------------------------------------------------------------------------------------


def offline_env(monkeypatch, tmp):
    """No key, no login, no network: W&B must go offline even when WANDB_MODE asks for online;
    MLflow without a tracking URI (its local store)."""
    for var in ("WANDB_API_KEY", "WANDB_DIR", "WANDB_PROJECT", "MLFLOW_TRACKING_URI", "MLFLOW_EXPERIMENT_NAME"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("WANDB_MODE", "online")
    monkeypatch.setenv("NETRC", str(tmp / "no-netrc"))
    for var in ("WANDB_CONFIG_DIR", "WANDB_CACHE_DIR", "WANDB_DATA_DIR"):
        monkeypatch.setenv(var, str(tmp / "wandb-home" / var.lower()))


@pytest.fixture
def offline(monkeypatch, tmp_path):
    offline_env(monkeypatch, tmp_path)


def test_wandb_goes_online_only_when_asked_and_a_key_is_there(monkeypatch, tmp_path):
    from spell.trackers import wandb_mode

    offline_env(monkeypatch, tmp_path)
    monkeypatch.delenv("WANDB_MODE")
    assert wandb_mode() == "offline"
    monkeypatch.setenv("WANDB_API_KEY", "k" * 40)
    assert wandb_mode() == "offline"  # a key alone does not upload
    monkeypatch.setenv("WANDB_MODE", "online")
    assert wandb_mode() == "online"
    monkeypatch.delenv("WANDB_API_KEY")
    assert wandb_mode() == "offline"  # asked, but no key
    (tmp_path / "netrc").write_text("machine api.wandb.ai\n  login user\n  password " + "k" * 40 + "\n")
    (tmp_path / "netrc").chmod(0o600)
    monkeypatch.setenv("NETRC", str(tmp_path / "netrc"))
    assert wandb_mode() == "online"  # the key of a `wandb login`
    monkeypatch.setenv("WANDB_MODE", "disabled")
    assert wandb_mode() == "disabled"


def wandb_history(run_file):
    """{step: {name: value}} of the history records in an offline run file (`run-ID.wandb`: a
    7-byte header, then LevelDB-log records of wandb's protobuf `Record`)."""
    from wandb.proto import wandb_internal_pb2 as pb

    data = Path(run_file).read_bytes()
    assert data[:4] == b":W&B"
    pos, block, pending, out = 7, 32768, b"", {}
    while pos + 7 <= len(data):
        left = block - pos % block
        _crc, length, kind = struct.unpack("<IHB", data[pos : pos + 7])
        if left < 7 or (kind == 0 and length == 0):  # block trailer / padding
            pos += left
            continue
        chunk, pos = data[pos + 7 : pos + 7 + length], pos + 7 + length
        pending = chunk if kind in (1, 2) else pending + chunk  # full / first, or middle / last
        if kind in (1, 4):
            record = pb.Record.FromString(pending)
            if record.WhichOneof("record_type") == "history":
                row = out.setdefault(record.history.step.num, {})
                for item in record.history.item:
                    row[item.key or ".".join(item.nested_key)] = json.loads(item.value_json)
    return out


@pytest.mark.parametrize("backend", ["wandb", "mlflow"])
def test_wandb_offline_and_mlflow_local_get_the_same_metric_names(backend, tracked_run):
    pytest.importorskip(backend)
    out, events, metrics = tracked_run
    if backend == "wandb":
        (run_file,) = glob.glob(str(out / "wandb" / "offline-run-*" / "run-*.wandb"))
        history = wandb_history(run_file)
        got = {name: [(step, row[name]) for step, row in sorted(history.items()) if name in row]
               for name in {n for row in history.values() for n in row}}
    else:
        from mlflow.tracking import MlflowClient

        client = MlflowClient(tracking_uri=(out / "mlruns").resolve().as_uri())
        (run,) = client.search_runs([client.get_experiment_by_name("spell").experiment_id])
        assert run.info.status == "FINISHED" and run.info.run_name == "run"
        assert run.data.params["selfplay.group_size"] == "4" and backend in json.loads(run.data.params["run.report_to"])
        got = {name: [(m.step, m.value) for m in sorted(client.get_metric_history(run.info.run_id, name), key=lambda m: m.step)]
               for name in run.data.metrics}
    for name in ("reward.responder", "reward.questioner"):
        assert got[name] == [(1, pytest.approx(metrics[1][name])), (2, pytest.approx(metrics[2][name]))], name
    named = {name for values in metrics.values() for name, value in values.items() if value is not None}
    assert named <= set(got)
    assert got["stage.max_context"] == [(0, 2048)]


def test_mlflow_names_refuse_some_characters(tmp_path, offline):
    pytest.importorskip("mlflow")
    from mlflow.tracking import MlflowClient

    from spell.trackers import MLflowTracker

    assert mlflow_name("eval.sets.heldout-towns-mc.mean@k") == "eval.sets.heldout-towns-mc.mean_at_k"
    tracker = MLflowTracker(tmp_path, config=preset("cpu-demo").to_dict())
    trackers = Trackers([tracker])
    trackers.log_event("eval", {"sets": {"towns (v2)": {"mean@k": 0.5, "pass@k": 1.0}}, "mean": 0.5}, 5)
    trackers.close()
    run = MlflowClient(tracking_uri=tracker.uri).get_run(tracker.run_id)
    assert run.data.metrics == {"eval.sets.towns _v2_.mean_at_k": 0.5, "eval.sets.towns _v2_.pass_at_k": 1.0, "eval.mean": 0.5}
