"""Data-parallel self-play (issue 14): two gloo ranks under torchrun against one process, through
the CLI, on the tiny model with DeepSpeed ZeRO-3 and torch's AdamW (no C++ op compiles).

Two ranks split each generation batch by question slot and gather the results, so they must do
exactly the one process's work: the same update batch, loss and gradient norm at step 1 and the
same weights after it (within floating point: the ranks' gradients are averaged in another order).
From step 2 the generations of the two runs may part by a token: the tiny model's distribution is
almost flat (entropy ~10.15 of a possible 10.8 nats), so weights that differ by 1e-7 move a sampled
token across a boundary now and then; the planning of step 2 (which documents each slot asks
about) is still the same, and so are the weights.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch
from safetensors.torch import load_file

from spell.events import read_events
from tests.spell.test_train import ROOT, TINY_SETTINGS, corpus, env, tiny_path  # noqa: F401 - fixtures

pytestmark = pytest.mark.slow

# Records the tiny random model writes under the grounded grammar reach the responder (the quality
# filter off) and train even without a varied group, so an update happens in every step.
DP_SETTINGS = [s for s in TINY_SETTINGS if not s.startswith(("sampling.max_response_tokens", "selfplay.group_size"))] + [
    "sampling.max_response_tokens=112", "selfplay.group_size=4", "selfplay.question_quality_filter=false",
    "selfplay.train_without_varied_groups=true", 'trainer.backend="deepspeed"', "trainer.zero_stage=3",
    # the self-play step is the subject here: no warm-up before it (after one, the tiny model's first
    # step had nothing to update)
    "warmup.enabled=false",
]


def train(tiny_path, corpus, out, ranks: int, steps: int, *extra: str) -> subprocess.CompletedProcess:
    launcher = ["-m", "spell"] if ranks == 1 else ["-m", "spell.torchrun", "--standalone", f"--nproc_per_node={ranks}",
                                                    "-m", "spell"]
    sets = [a for s in DP_SETTINGS + [f"run.steps={steps}"] for a in ("--set", s)]
    return subprocess.run([sys.executable, *launcher, "train", "--preset", "cpu-demo", "--model", str(tiny_path),
                           "--corpus", str(corpus), "--out", str(out), "--no-progress", *sets, *extra],
                          cwd=ROOT, env=env(), capture_output=True, text=True, timeout=600)


def of_type(events, kind):
    return [e for e in events if e["type"] == kind]


def work(metrics: dict) -> dict:
    """A step's metrics less what depends on the clock or on how the work was split."""
    return {k: v for k, v in metrics.items() if k not in ("time", "throughput", "distributed")}


def assert_close(a, b, path=""):
    if isinstance(a, dict):
        assert set(a) == set(b), path
        for key in a:
            assert_close(a[key], b[key], f"{path}.{key}")
    elif isinstance(a, list):
        assert len(a) == len(b), path
        for i, (x, y) in enumerate(zip(a, b)):
            assert_close(x, y, f"{path}[{i}]")
    elif isinstance(a, float) and isinstance(b, float):
        assert a == pytest.approx(b, rel=1e-5, abs=1e-6), path
    else:
        assert a == b, path


def weights(run_dir, step: int) -> dict[str, torch.Tensor]:
    return load_file(run_dir / "checkpoints" / f"step-{step:06d}" / "model" / "model.safetensors")


@pytest.mark.timeout(900)
def test_two_ranks_do_one_process_work_split_and_resume_on_two(tiny_path, corpus, tmp_path):  # noqa: F811
    one, two = tmp_path / "one", tmp_path / "two"
    solo = train(tiny_path, corpus, one, 1, 2)
    assert solo.returncode == 0, solo.stderr[-3000:]
    pair = train(tiny_path, corpus, two, 2, 2)
    assert pair.returncode == 0, pair.stderr[-3000:]
    solo_events, pair_events = read_events(one / "events.jsonl"), read_events(two / "events.jsonl")

    # The ranks took disjoint slots between them, every slot once, and both worked.
    for step in (1, 2):
        taken = {(e["payload"]["slot"], e["payload"]["rank"]) for e in of_type(pair_events, "sample") if e["step"] == step}
        slots = [slot for slot, _ in taken]
        assert len(slots) == len(set(slots)) and sorted(slots) == list(range(len(slots)))
        assert all(rank == slot % 2 for slot, rank in taken) and {rank for _, rank in taken} == {0, 1}
    pair_metrics = of_type(pair_events, "metrics")
    assert all(m["payload"]["distributed"]["world_size"] == 2 for m in pair_metrics)
    assert all(set(m["payload"]["time"]["generation_per_rank"]) == {"0", "1"} for m in pair_metrics)
    assert all(min(m["payload"]["distributed"]["generated_tokens_per_rank"].values()) > 0 for m in pair_metrics)

    # Step 1 is the one process's step: update batch, rewards, loss, gradient norm.
    solo_metrics = of_type(solo_events, "metrics")
    assert solo_metrics[0]["payload"]["batch"]["updated"] == 1 and solo_metrics[0]["payload"]["train"]["tokens"] > 0
    assert_close(work(solo_metrics[0]["payload"]), work(pair_metrics[0]["payload"]))
    plan = lambda events: sorted((e["payload"]["slot"], e["payload"]["task"], e["payload"]["cluster"],  # noqa: E731
                                  tuple(e["payload"]["doc_ids"])) for e in of_type(events, "sample") if e["step"] == 2)
    assert plan(solo_events) == plan(pair_events)
    # ... and the weights after each step agree within floating point.
    for step in (1, 2):
        a, b = weights(one, step), weights(two, step)
        assert set(a) == set(b)
        assert max(float((a[k].double() - b[k].double()).abs().max()) for k in a) < 1e-6
    start = load_file(tiny_path / "model.safetensors")
    assert any(not torch.equal(weights(two, 1)[k], start[k]) for k in start)  # step 1 did train

    # Both ranks hold the same weights at every checkpoint; each wrote its optimizer shard.
    for event in of_type(pair_events, "checkpoint"):
        digests = event["payload"]["weights_digest_per_rank"]
        assert len(digests) == 2 and digests[0] == digests[1]
    shards = sorted(p.name for p in (two / "checkpoints" / "step-000002" / "deepspeed" / "state").glob("*optim_states.pt"))
    assert shards == ["zero_pp_rank_0_mp_rank_00_optim_states.pt", "zero_pp_rank_1_mp_rank_00_optim_states.pt"]

    # A resume on one process is refused before anything is written; on two it goes on.
    refused = train(tiny_path, corpus, two, 1, 3, "--resume", "--attempt", "2")
    assert refused.returncode == 2 and "written by 2 process(es) and this attempt has 1" in refused.stderr
    resumed = train(tiny_path, corpus, two, 2, 3, "--resume", "--attempt", "2")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    events = [e for e in read_events(two / "events.jsonl") if e["attempt"] == 2]
    assert of_type(events, "log")[0]["payload"]["message"] == "resumed from step 2"
    assert [m["step"] for m in of_type(events, "metrics")] == [3]
    (last,) = [e for e in of_type(events, "checkpoint") if e["step"] == 3]
    assert len(set(last["payload"]["weights_digest_per_rank"])) == 1
    assert json.loads((two / "checkpoints" / "step-000003" / "state.json").read_text())["extra"]["world_size"] == 2
