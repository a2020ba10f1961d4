import random

import pytest

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
    sample_bad_questions,
    verifier_quota,
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
    batch = build_update_batch(kept, bad, verifier, random.Random(0), verifier_rule="share")
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
        "without_varied_groups": 0,
    }


def test_update_batch_is_reproducible_with_a_seeded_rng():
    kept = [group("doc_mc", [0, 1], f"m{i}") for i in range(4)]
    bad = [q("doc_mc", FORMAT_ERROR, f"b{i}") for i in range(10)]
    v = [vgroup(True, f"v{i}") for i in range(40)]
    a = build_update_batch(kept, bad, v, random.Random(7), verifier_rule="share")
    b = build_update_batch(kept, bad, v, random.Random(7), verifier_rule="share")
    assert [x.question for x in a.questioner] == [x.question for x in b.questioner]
    assert [x.question.question for x in a.verifier] == [x.question.question for x in b.verifier]
    assert len(a.verifier) == 5  # round(0.125 * 40)


def test_no_eligible_verifier_groups_leaves_the_verifier_out():
    for rule in ("fixed", "share"):
        batch = build_update_batch([group("doc_mc", [0, 1])], [], [vgroup(False)], random.Random(0), verifier_rule=rule)
        assert batch.verifier == []
    # share: a few eligible give at least one
    batch = build_update_batch([group("doc_mc", [0, 1])], [], [vgroup(True)], random.Random(0), verifier_rule="share")
    assert len(batch.verifier) == 1


def test_fixed_verifier_quota_is_the_releases():
    # B = 128 groups x G = 8 rollouts, 12.5%, 8 votes per group: int(1024 x 0.125 / 8) = 16
    assert verifier_quota(40, 128 * 8, rule="fixed", share=0.125, samples=8) == 16
    assert verifier_quota(16, 128 * 8, rule="fixed", share=0.125, samples=8) == 16
    # fewer eligible than the quota: the verifier sits this update out (not "all 15")
    assert verifier_quota(15, 128 * 8, rule="fixed", share=0.125, samples=8) == 0
    # 100 groups found before the generation-batch cap: int(800 x 0.125 / 8) = int(12.5) = 12
    assert verifier_quota(40, 100 * 8, rule="fixed", share=0.125, samples=8) == 12
    # cpu-demo's numbers: int(3 x 4 x 0.125 / 4) = int(0.375) = 0 -> never any
    assert verifier_quota(12, 3 * 4, rule="fixed", share=0.125, samples=4) == 0
    # share: round(0.5 x 5) = round(2.5) = 2 (banker's rounding), at least one, at most all
    assert verifier_quota(5, 12, rule="share", share=0.5, samples=4) == 2
    assert verifier_quota(1, 12, rule="share", share=0.125, samples=4) == 1
    assert verifier_quota(0, 12, rule="share", share=0.5, samples=4) == 0
    with pytest.raises(ValueError):
        verifier_quota(1, 12, rule="most")


def test_the_update_batch_takes_the_fixed_quota_at_random():
    kept = [group("doc_mc", [0, 1] * 4, f"m{i}") for i in range(16)]  # 16 groups x 8 rollouts
    eligible = [vgroup(True, f"v{i}") for i in range(5)] + [vgroup(False, "no")]
    # int(128 x 0.125 / 8) = 2 groups of the 5 eligible
    batch = build_update_batch(kept, [], eligible, random.Random(3), verifier_samples=8)
    assert len(batch.verifier) == 2 and all(v.eligible for v in batch.verifier)
    assert batch.counts["verifier_eligible"] == 5 and batch.counts["verifier_groups"] == 2
    # an external judge's groups are never trained
    judged = build_update_batch(kept, [], eligible, random.Random(3), verifier_samples=8, train_verifier=False)
    assert judged.verifier == [] and judged.counts["verifier_eligible"] == 5


def test_bad_questions_pass_a_shortfall_on_to_the_next_task():
    good = [q("doc_mc", name="g1"), q("doc_mc", name="g2"), q("doc_mc", name="g3"), q("docmath_qa", name="g4")]
    bad = [q("doc_mc", FORMAT_ERROR, "bm1")] + [q("docmath_qa", UNGROUNDED, f"bx{i}") for i in range(5)]
    # doc_mc (3 good, first: most good) wants 3, has 1 -> short by 2; docmath_qa wants 1 + 2 = 3
    chosen = sample_bad_questions(good, bad, random.Random(0), 1.0)
    names = [c.question for c in chosen]
    assert names[0] == "bm1" and len(names) == 4
    assert sum(n.startswith("bx") for n in names) == 3
    # int(), not round(): 0.5 x 3 = 1.5 -> 1 for doc_mc, 0.5 x 1 = 0.5 -> 0 for docmath_qa
    half = sample_bad_questions(good, bad, random.Random(0), 0.5)
    assert [c.task for c in half] == ["doc_mc"]


def test_no_varied_group_means_an_empty_update():
    batch = build_update_batch([], [q("doc_mc", FORMAT_ERROR)], [vgroup(True)], random.Random(0))
    assert batch.empty and batch.questioner == [] and batch.verifier == []


def scored(task, status, reward, name=""):
    record = q(task, status, name)
    record.reward = reward
    return record


def test_without_varied_groups_the_small_model_switch_still_trains_questioner_and_verifier():
    questions = [scored("doc_mc", FORMAT_ERROR, -1.0, "f"), scored("doc_mc", UNGROUNDED, -0.5, "u"),
                 scored("doc_mc", ZERO_VARIANCE, 0.0, "z"), scored("doc_mc", "dropped", 0.0, "d")]
    zero = [group("doc_mc", [1, 1, 1, 1], "z")]
    batch = build_update_batch([], questions, [vgroup(True, "v1"), vgroup(False, "v2")], random.Random(0),
                               verifier_rule="share", verifier_share=1.0, without_varied_groups=True, zero_variance=zero)
    assert not batch.empty
    assert [r.question for r in batch.questioner] == ["f", "u", "z"]  # every scored record; dropped ones never
    assert [v.question.question for v in batch.verifier] == ["v1"]  # eligible groups only
    assert batch.counts["without_varied_groups"] == 1 and batch.counts["questioner_bad"] == 3
    # The fixed (release) quota counts the zero-variance groups' rollouts: int(4 x 0.125 / 8) = 0 here.
    fixed = build_update_batch([], questions, [vgroup(True)], random.Random(0), without_varied_groups=True, zero_variance=zero)
    assert fixed.verifier == []


def test_without_varied_groups_records_that_all_scored_the_same_teach_nothing():
    same = [scored("doc_mc", FORMAT_ERROR, -1.0, f"f{i}") for i in range(3)]
    batch = build_update_batch([], same, [], random.Random(0), without_varied_groups=True)
    assert batch.empty and batch.counts["without_varied_groups"] == 0
    # With a kept group the switch changes nothing: the release's batch.
    kept = [group("doc_mc", [0, 1], "m")]
    assert build_update_batch(kept, same, [], random.Random(0), without_varied_groups=True).counts == \
        build_update_batch(kept, same, [], random.Random(0)).counts


def test_bad_ratio_and_questioner_switch():
    kept = [group("doc_mc", [0, 1], f"m{i}") for i in range(4)]
    bad = [q("doc_mc", FORMAT_ERROR, f"b{i}") for i in range(10)]
    half = build_update_batch(kept, bad, [], random.Random(0), bad_ratio=0.5)
    assert half.counts["questioner_bad"] == 2
    off = build_update_batch(kept, bad, [], random.Random(0), train_questioner=False)
    assert off.questioner == [] and off.counts["questioner_good"] == 0
    short = build_update_batch(kept, bad[:1], [], random.Random(0))
    assert short.counts["questioner_bad"] == 1  # fewer bad than good: all of them
