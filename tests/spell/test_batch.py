import random

from spell.batch import (
    FORMAT_ERROR,
    UNGROUNDED,
    VALID,
    ZERO_VARIANCE,
    DynamicSampler,
    QuestionRecord,
    ResponderGroup,
    VerifierGroup,
    build_update_batch,
    has_variance,
)


def q(task, status=VALID, name=""):
    return QuestionRecord(task=task, cluster="c", status=status, question=name)


def group(task, rewards, name=""):
    return ResponderGroup(question=q(task, name=name), rewards=list(rewards))


def vgroup(eligible, name=""):
    return VerifierGroup(question=q("doc_mc", name=name), decisions=[1, 1, 0], rewards=[1, 1, 0], majority=1, eligible=eligible)


def test_has_variance():
    assert has_variance([0, 1, 0, 0])
    assert not has_variance([1, 1, 1, 1])
    assert not has_variance([0.5])
    assert has_variance([0.0, 1e-3])


def test_dynamic_sampling_accumulates_until_b():
    s = DynamicSampler(target=3, max_batches=10)
    s.add_batch([group("doc_mc", [1, 1]), group("doc_mc", [0, 1], "a")])
    assert len(s.kept) == 1 and len(s.zero_variance) == 1 and not s.done
    s.add_batch([group("doc_mc", [0, 1], "b"), group("doc_mc", [0, 0]), group("doc_mc", [1, 0], "c"), group("doc_mc", [1, 0], "d")])
    assert [g.question.question for g in s.kept] == ["a", "b", "c"]
    assert [g.question.question for g in s.surplus] == ["d"]
    assert s.done and s.full and s.batches == 2


def test_dynamic_sampling_stops_at_the_cap_with_fewer():
    s = DynamicSampler(target=5, max_batches=2)
    s.add_batch([group("doc_mc", [0, 1])])
    assert not s.done
    s.add_batch([group("doc_mc", [1, 1])])
    assert s.done and not s.full and len(s.kept) == 1


def test_update_batch_balances_roles():
    kept = [group("doc_mc", [0, 1], "m1"), group("doc_mc", [1, 0], "m2"), group("docmath_qa", [0, 1], "x1")]
    bad = [
        q("doc_mc", FORMAT_ERROR, "bm1"),
        q("doc_mc", UNGROUNDED, "bm2"),
        q("doc_mc", ZERO_VARIANCE, "bm3"),
        q("docmath_qa", FORMAT_ERROR, "bx1"),
        q("docmath_qa", FORMAT_ERROR, "bx2"),
        q("doc_general_qa", FORMAT_ERROR, "bg1"),  # no good question of this task: not drawn
        q("doc_mc", "dropped", "dr"),  # dropped: never trained on
    ]
    verifier = [vgroup(True, f"v{i}") for i in range(16)] + [vgroup(False, "no")]
    batch = build_update_batch(kept, bad, verifier, random.Random(0))
    assert batch.responder == kept
    names = [r.question for r in batch.questioner]
    assert names[:3] == ["m1", "m2", "x1"]
    bad_names = names[3:]
    # stratified by task: 2 bad doc_mc (as many as its good), 1 bad docmath_qa
    assert sum(n.startswith("bm") for n in bad_names) == 2
    assert sum(n.startswith("bx") for n in bad_names) == 1
    assert "bg1" not in bad_names and "dr" not in bad_names
    # 12.5% of 16 eligible = 2
    assert len(batch.verifier) == 2 and all(v.eligible for v in batch.verifier)
    assert batch.counts == {
        "responder_groups": 3,
        "questioner_good": 3,
        "questioner_bad": 3,
        "verifier_eligible": 16,
        "verifier_groups": 2,
    }


def test_update_batch_is_reproducible_with_a_seeded_rng():
    kept = [group("doc_mc", [0, 1], f"m{i}") for i in range(4)]
    bad = [q("doc_mc", FORMAT_ERROR, f"b{i}") for i in range(10)]
    v = [vgroup(True, f"v{i}") for i in range(40)]
    a = build_update_batch(kept, bad, v, random.Random(7))
    b = build_update_batch(kept, bad, v, random.Random(7))
    assert [x.question for x in a.questioner] == [x.question for x in b.questioner]
    assert [x.question.question for x in a.verifier] == [x.question.question for x in b.verifier]
    assert len(a.verifier) == 5  # round(0.125 * 40)


def test_no_eligible_verifier_groups_leaves_the_verifier_out():
    batch = build_update_batch([group("doc_mc", [0, 1])], [], [vgroup(False)], random.Random(0))
    assert batch.verifier == []
    # a few eligible: at least one
    batch = build_update_batch([group("doc_mc", [0, 1])], [], [vgroup(True)], random.Random(0))
    assert len(batch.verifier) == 1


def test_no_varied_group_means_an_empty_update():
    batch = build_update_batch([], [q("doc_mc", FORMAT_ERROR)], [vgroup(True)], random.Random(0))
    assert batch.empty and batch.questioner == [] and batch.verifier == []


def test_bad_ratio_and_questioner_switch():
    kept = [group("doc_mc", [0, 1], f"m{i}") for i in range(4)]
    bad = [q("doc_mc", FORMAT_ERROR, f"b{i}") for i in range(10)]
    half = build_update_batch(kept, bad, [], random.Random(0), bad_ratio=0.5)
    assert half.counts["questioner_bad"] == 2
    off = build_update_batch(kept, bad, [], random.Random(0), train_questioner=False)
    assert off.questioner == [] and off.counts["questioner_good"] == 0
    short = build_update_batch(kept, bad[:1], [], random.Random(0))
    assert short.counts["questioner_bad"] == 1  # fewer bad than good: all of them
