"""enqueue_for_review: the relay's hook, deciding which new judgments go to people."""

from webapp.audits import sampling
from webapp.audits.models import ReviewItem
from webapp.audits.services import enqueue_for_review
from webapp.runs.models import Sample

from .conftest import make_run, make_sample


def test_it_queues_about_the_share_of_judgments(people):
    run = make_run(people.team, audit={"review_share": 0.2, "double_share": 0})
    samples = [make_sample(run, step=i // 50) for i in range(600)]
    created = enqueue_for_review(samples)
    assert created == ReviewItem.objects.filter(run=run).count()
    random = ReviewItem.objects.filter(run=run, reason="random").count()
    assert 80 < random < 160
    expected = {s.pk for s in samples if sampling.draw(s.pk, "review") < 0.2}
    assert set(ReviewItem.objects.filter(run=run, reason="random").values_list("sample_id", flat=True)) == expected


def test_it_does_not_queue_a_redelivered_sample_twice(people):
    run = make_run(people.team, audit={"review_share": 0.5})
    samples = [make_sample(run) for _ in range(40)]
    first = enqueue_for_review(samples)
    assert first > 0
    assert enqueue_for_review(samples) == 0
    assert enqueue_for_review(list(reversed(samples[:20]))) == 0
    assert ReviewItem.objects.filter(run=run).count() == first


def test_it_looks_up_samples_stored_without_an_id(people):
    run = make_run(people.team, audit={"review_share": 1.0})
    stored = make_sample(run)
    unsaved = Sample(run_id=run.pk, seq=stored.seq, index=0)  # as bulk_create(ignore_conflicts=True) leaves them
    assert enqueue_for_review([unsaved]) == 1
    assert ReviewItem.objects.get().sample_id == stored.pk


def test_it_takes_only_judgments_with_a_verifier_decision(people):
    run = make_run(people.team, audit={"review_share": 1.0})
    skipped = [
        make_sample(run, verdict="SKIPPED", majority=""),
        make_sample(run, verdict="INVALID", majority="-1"),
        make_sample(run, response=""),
        make_sample(run, superseded=True),
    ]
    good = make_sample(run, verdict="NO", majority="0")
    assert enqueue_for_review(skipped + [good]) == 1
    item = ReviewItem.objects.get()
    assert item.sample_id == good.pk and item.verifier_yes is False


def test_it_oversamples_disagreements_and_serves_them_first(people):
    run = make_run(people.team, audit={"review_share": 0.1})
    plain = [make_sample(run) for _ in range(100)]
    disputed = [make_sample(run, disagreement=True, rule_score=0.0) for _ in range(30)]
    enqueue_for_review(plain + disputed)
    queued = set(ReviewItem.objects.values_list("sample_id", flat=True))
    assert {s.pk for s in disputed} <= queued  # 0.1 x 10: every disagreement
    assert len(queued & {s.pk for s in plain}) < 30
    reasons = {i.sample_id: (i.reason, i.priority) for i in ReviewItem.objects.all()}
    assert all(reasons[s.pk][1] == 2 for s in disputed if reasons[s.pk][0] == "disagreement")


def test_it_takes_the_first_judgment_of_each_task_and_stage(people):
    run = make_run(people.team, audit={"review_share": 0.0001})
    first_a = make_sample(run, task="doc_mc", stage=0)
    make_sample(run, task="doc_mc", stage=0)
    first_b = make_sample(run, task="doc_mc", stage=1)
    first_c = make_sample(run, task="docmath_qa", stage=1)
    enqueue_for_review(list(Sample.objects.filter(run=run)))
    items = ReviewItem.objects.filter(reason="stratum")
    assert set(items.values_list("sample_id", flat=True)) == {first_a.pk, first_b.pk, first_c.pk}
    assert set(items.values_list("task", "stage")) == {("doc_mc", 0), ("doc_mc", 1), ("docmath_qa", 1)}
    later = make_sample(run, task="doc_mc", stage=1)
    enqueue_for_review([later])
    assert not ReviewItem.objects.filter(sample=later, reason="stratum").exists()


def test_it_copies_the_run_team_task_stage_and_step(people):
    run = make_run(people.team, audit={"review_share": 1.0, "double_share": 1.0})
    s = make_sample(run, step=7, task="doc_mc", stage=2)
    enqueue_for_review([s])
    item = ReviewItem.objects.get()
    assert (item.run_id, item.team_id, item.task, item.stage, item.step) == (run.pk, people.team.pk, "doc_mc", 2, 7)
    assert item.needed_labels == 2 and item.verifier_yes is True


def test_it_gives_about_the_double_share_two_annotators(people):
    run = make_run(people.team, audit={"review_share": 1.0, "double_share": 0.3})
    enqueue_for_review([make_sample(run) for _ in range(300)])
    doubles = ReviewItem.objects.filter(needed_labels=2).count()
    assert 60 < doubles < 120
    assert ReviewItem.objects.exclude(needed_labels__in=(1, 2)).count() == 0


def test_it_queues_nothing_when_the_share_is_zero(people):
    run = make_run(people.team, audit={"review_share": 0})
    assert enqueue_for_review([make_sample(run, disagreement=True) for _ in range(20)]) == 0


def test_it_handles_samples_of_several_runs(people):
    a = make_run(people.team, audit={"review_share": 1.0})
    b = make_run(people.other_team, audit={"review_share": 1.0})
    assert enqueue_for_review([make_sample(a), make_sample(b), make_sample(a)]) == 3
    assert ReviewItem.objects.filter(team=people.other_team).count() == 1
