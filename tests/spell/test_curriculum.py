import json
import random

import pytest

from spell.config import preset, with_overrides
from spell.curriculum import (
    HistoryMemory,
    LengthCurriculum,
    MemoryEntry,
    admits,
    fit_questioner_documents,
    fit_responder_documents,
)

CLUSTER = [f"d{i}" for i in range(20)]


def entry(q, docs, rbar=0.5):
    return MemoryEntry(question=q, answer="a", doc_ids=list(docs), rbar=rbar)


def test_memory_grows_by_five_documents_per_admission():
    mem = HistoryMemory(depth=3, docs_per_question=5, new_docs_per_round=5)
    rng = random.Random(0)
    sizes = []
    for i in range(4):
        docs = mem.select_documents("doc_mc", "c1", CLUSTER, rng)
        sizes.append(len(docs))
        assert len(set(docs)) == len(docs) and set(docs) <= set(CLUSTER)
        if i:
            # every remembered document is shown again
            remembered = {d for e in mem.entries("doc_mc", "c1") for d in e.doc_ids}
            assert remembered <= set(docs)
        assert mem.offer("doc_mc", "c1", entry(f"q{i}", docs), r_que=0.8)
    # 5, then +5 per remembered question: 10, 15, 20 (after three admissions)
    assert sizes == [5, 10, 15, 20]
    assert mem.memory_depth("doc_mc", "c1") == 3
    # capped at the whole cluster
    assert len(mem.select_documents("doc_mc", "c1", CLUSTER, rng)) == 20


def test_memory_is_a_fifo_of_depth_l_per_task_and_cluster():
    mem = HistoryMemory(depth=3)
    for i in range(5):
        mem.add("doc_mc", "c1", entry(f"q{i}", ["d0"]))
    assert [e.question for e in mem.entries("doc_mc", "c1")] == ["q2", "q3", "q4"]
    assert mem.memory_depth("doc_general_qa", "c1") == 0
    assert mem.memory_depth("doc_mc", "c2") == 0
    assert [ex["question"] for ex in mem.examples("doc_mc", "c1")] == ["q2", "q3", "q4"]


def test_admission_rules():
    assert admits(rule="paper", r_que=0.01)
    assert not admits(rule="paper", r_que=0.0)
    assert not admits(rule="paper", r_que=-0.5)
    assert admits(rule="release", rbar=0.01, fresh=True)
    assert admits(rule="release", rbar=1.0, fresh=True)
    assert not admits(rule="release", rbar=0.0, fresh=True)
    assert not admits(rule="release", rbar=0.5, fresh=False)
    with pytest.raises(ValueError):
        admits(rule="always")


def test_offer_paper_and_release():
    paper = HistoryMemory(depth=3)
    assert not paper.offer("doc_mc", "c", entry("q", ["d0"], rbar=1.0), r_que=0.0)
    assert paper.offer("doc_mc", "c", entry("q", ["d0"], rbar=0.5), r_que=1.0)
    release = HistoryMemory(depth=3, admission="release")
    assert release.offer("doc_mc", "c", entry("Who?", ["d0"], rbar=1.0))
    # the same question again is not fresh
    assert not release.offer("doc_mc", "c", entry("who", ["d1"], rbar=0.5))


def test_disabled_memory_never_remembers():
    mem = HistoryMemory(depth=3, enabled=False)
    assert not mem.offer("doc_mc", "c", entry("q", ["d0"]), r_que=1.0)
    assert len(mem.select_documents("doc_mc", "c", CLUSTER, random.Random(0))) == 5


def test_memory_state_round_trip_is_json_safe():
    mem = HistoryMemory.from_config(preset("paper-7b"))
    mem.add("doc_mc", "c1", MemoryEntry("q", "B", ["d1", "d2"], options={"A": "x", "B": "y", "C": "z", "D": "w"}))
    mem.add("docmath_qa", "c2", entry("q2", ["d3"]))
    state = json.loads(json.dumps(mem.state_dict()))
    other = HistoryMemory.from_config(preset("paper-7b"))
    other.load_state_dict(state)
    assert other.entries("doc_mc", "c1") == mem.entries("doc_mc", "c1")
    assert other.entries("docmath_qa", "c2") == mem.entries("docmath_qa", "c2")


def test_fit_responder_documents_drops_unseen_documents_first():
    tokens = {f"d{i}": 100 for i in range(6)}
    seen = ["d0", "d4"]
    cluster = [f"d{i}" for i in range(6)]
    assert fit_responder_documents(seen, cluster, tokens, 600) == cluster
    # 400 tokens: drop unseen from the end: d5, d3
    assert fit_responder_documents(seen, cluster, tokens, 400) == ["d0", "d1", "d2", "d4"]
    assert fit_responder_documents(seen, cluster, tokens, 200) == ["d0", "d4"]
    assert fit_responder_documents(seen, cluster, tokens, 150) is None


def test_length_curriculum_needs_a_full_window():
    lc = LengthCurriculum(stages=[1024, 2048, 4096], promote_accuracy=0.6, window=3)
    assert lc.max_context == 1024 and lc.stage == 0
    assert not lc.record(1.0)
    assert not lc.record(1.0)  # window not full yet
    assert lc.record(0.5)  # (1 + 1 + 0.5) / 3 = 0.833 >= 0.6
    assert lc.max_context == 2048


def test_length_curriculum_hand_computed():
    lc = LengthCurriculum(stages=[1024, 2048], promote_accuracy=0.5, window=2)
    assert not lc.record(0.25)
    assert not lc.record(0.5)  # mean 0.375
    assert lc.record(0.75)  # window [0.5, 0.75]: mean 0.625 >= 0.5
    assert lc.stage == 1 and lc.max_context == 2048 and lc.history == []
    assert not lc.record(1.0) and not lc.record(1.0)  # last stage: stays
    assert lc.is_last


def test_length_curriculum_state_and_disabled():
    lc = LengthCurriculum.from_config(preset("cpu-demo"))
    lc.record(0.1)
    state = json.loads(json.dumps(lc.state_dict()))
    other = LengthCurriculum.from_config(preset("cpu-demo"))
    other.load_state_dict(state)
    assert (other.stage, other.history) == (lc.stage, lc.history)
    with pytest.raises(ValueError):
        other.load_state_dict({"stage": 9})
    off = LengthCurriculum([1, 2, 3], enabled=False)
    assert off.max_context == 3 and not off.record(1.0)


def test_memory_depth_and_stage_are_separate():
    mem = HistoryMemory(depth=3)
    lc = LengthCurriculum([1024, 2048], promote_accuracy=0.0, window=1)
    lc.record(1.0)
    assert lc.stage == 1
    assert mem.memory_depth("doc_mc", "c") == 0


def test_questioner_documents_come_in_the_clusters_order():
    # Sampled at random, shown in the cluster's order (as the release sorts them): the responder
    # sees the same documents in the same order, among the others.
    mem = HistoryMemory(depth=3, docs_per_question=5, new_docs_per_round=5)
    rng = random.Random(4)
    first = mem.select_documents("doc_mc", "c1", CLUSTER, rng)
    assert first == sorted(first, key=CLUSTER.index)
    mem.offer("doc_mc", "c1", entry("q0", first), r_que=0.8)
    second = mem.select_documents("doc_mc", "c1", CLUSTER, rng)
    assert second == sorted(second, key=CLUSTER.index) and set(first) < set(second)


def test_paper_7b_trains_at_its_full_context_throughout():
    # Off (paper-7b): always the prompt limit, 18,000 tokens, never promoted.
    lc = LengthCurriculum.from_config(preset("paper-7b"))
    assert not lc.enabled and lc.max_context == 18000
    assert not any(lc.record(1.0) for _ in range(10)) and lc.max_context == 18000
    # On: its first stage, promoted by the rolling accuracy.
    small = LengthCurriculum.from_config(with_overrides(
        preset("cpu-demo"), {"length_curriculum.enabled": True, "length_curriculum.stages": [1536, 2048]}))
    assert small.enabled and small.max_context == 1536


def test_an_over_long_questioner_context_drops_new_documents_first_then_the_oldest_remembered():
    mem = HistoryMemory(depth=3, docs_per_question=2, new_docs_per_round=2)
    mem.add("doc_mc", "c", entry("q0", ["d1", "d2"]))
    mem.add("doc_mc", "c", entry("q1", ["d1", "d2", "d5"]))
    chosen = ["d1", "d2", "d5", "d7", "d9"]  # d7, d9 are this round's new documents
    order = mem.drop_order("doc_mc", "c", chosen)
    assert order == ["d9", "d7", "d1", "d2", "d5"]
    tokens = dict.fromkeys(chosen, 100)
    assert fit_questioner_documents(chosen, order, tokens, 500) == chosen  # fits: nothing dropped
    assert fit_questioner_documents(chosen, order, tokens, 300) == ["d1", "d2", "d5"]
    assert fit_questioner_documents(chosen, order, tokens, 250) == ["d2", "d5"]
    # one document always stays when it fits; none fits: None (the cluster is skipped)
    assert fit_questioner_documents(chosen, order, tokens, 100) == ["d5"]
    assert fit_questioner_documents(chosen, order, tokens, 99) is None
