"""webapp/runs/dashboard.py: min/max downsampling, chart groups, overlay, config table, parsing."""

from __future__ import annotations

import pytest

from webapp.runs import dashboard


def test_it_returns_short_series_unchanged():
    points = [(0, 1.0), (1, None), (2, 3.0)]

    assert dashboard.downsample(points, 3) == points
    assert dashboard.downsample(points, 10) == points


def test_it_keeps_min_and_max_of_each_bucket_in_step_order():
    # 12 points, max 6 -> 3 buckets of 4: [5,1,9,2] [4,4,0,7] [3,8,8,1]
    values = [5, 1, 9, 2, 4, 4, 0, 7, 3, 8, 8, 1]
    points = [(s, float(v)) for s, v in enumerate(values)]

    kept = dashboard.downsample(points, 6)

    assert kept == [(1, 1.0), (2, 9.0), (6, 0.0), (7, 7.0), (9, 8.0), (11, 1.0)]


def test_it_keeps_one_point_when_a_buckets_min_is_its_max():
    points = [(s, 2.0) for s in range(8)]

    assert dashboard.downsample(points, 4) == [(0, 2.0), (4, 2.0)]


def test_it_splits_uneven_counts_and_never_exceeds_max_points():
    points = [(s, float(s)) for s in range(10)]  # 10 points, 3 buckets: [0..3) [3..6) [6..10)

    kept = dashboard.downsample(points, 7)

    assert kept == [(0, 0.0), (2, 2.0), (3, 3.0), (5, 5.0), (6, 6.0), (9, 9.0)]
    big = [(s, float((s * 37) % 101)) for s in range(100_000)]
    assert len(dashboard.downsample(big, 2000)) <= 2000


def test_it_treats_none_as_a_gap():
    # buckets of 3: [None, None, None] -> one gap; [1, None, 4] -> 1 and 4
    points = [(0, None), (1, None), (2, None), (3, 1.0), (4, None), (5, 4.0)]

    assert dashboard.downsample(points, 4) == [(0, None), (3, 1.0), (5, 4.0)]


def test_it_builds_the_series_payload():
    payload = dashboard.series_payload([(s, float(s % 2)) for s in range(6)], 4)

    assert payload == {"steps": [0, 1, 3, 4], "values": [0.0, 1.0, 1.0, 0.0], "total": 6, "downsampled": True}


def test_it_groups_the_emitted_metric_names_into_charts():
    available = ["reward.responder", "reward.questioner", "task.doc_mc.pass_rate", "task.docmath_qa.pass_rate",
                 "pass_rate.rule", "train.kl", "train.loss", "verifier.yes_rate", "eval.sets.hotpot.mean@k",
                 "eval.sets.hotpot.pass@k", "eval.mean", "eval.seconds", "task.doc_mc.questions", "unknown.metric"]

    groups = {g["key"]: g for g in dashboard.chart_groups(available)}

    assert [t["name"] for t in groups["reward"]["traces"]] == ["reward.questioner", "reward.responder"]
    assert [t["name"] for t in groups["pass_rate"]["traces"]] == ["pass_rate.rule", "task.doc_mc.pass_rate",
                                                                  "task.docmath_qa.pass_rate"]
    assert groups["loss"]["traces"] == [{"name": "train.loss", "axis": "y"}, {"name": "train.kl", "axis": "y2"}]
    assert [t["name"] for t in groups["eval"]["traces"]] == ["eval.sets.hotpot.mean@k", "eval.sets.hotpot.pass@k", "eval.mean"]
    assert groups["curriculum"]["traces"] == []  # tolerated: nothing reported yet
    assert groups["question_quality"]["traces"] == []
    charted = {g["key"]: [t["name"] for t in g["traces"]]
               for g in dashboard.chart_groups(["questioner.question_quality", "verifier.true_negative_rate"])}
    assert charted["question_quality"] == ["questioner.question_quality"]
    assert charted["verifier"] == ["verifier.true_negative_rate"]
    names = dashboard.chart_names(available)
    assert "unknown.metric" not in names and "eval.seconds" not in names and "task.doc_mc.questions" not in names


def test_it_matches_one_segment_per_star():
    assert dashboard.resolve(["task.*.pass_rate"], ["task.a.b.pass_rate", "task.x.pass_rate"]) == ["task.x.pass_rate"]


def test_it_overlays_runs_with_one_color_per_run():
    one = {"id": 1, "label": "#1 a", "series": {"reward.responder": {"steps": [1, 2], "values": [0.1, 0.2]}}}
    two = {"id": 2, "label": "#2 b", "series": {"reward.responder": {"steps": [1], "values": [0.5]},
                                                "train.kl": {"steps": [1], "values": [0.01]}}}

    charts = {c["key"]: c for c in dashboard.overlay([one, two])}

    assert set(charts) == {"reward", "loss"}
    assert [(t["run"], t["color"], t["label"], t["values"]) for t in charts["reward"]["traces"]] == [
        (1, 0, "#1 a · reward.responder", [0.1, 0.2]), (2, 1, "#2 b · reward.responder", [0.5])]
    assert [(t["run"], t["color"], t["axis"]) for t in charts["loss"]["traces"]] == [(2, 1, "y2")]


def test_it_lists_the_config_fields_that_differ():
    columns = [{"id": 1, "values": {"preset": "cpu-demo", "selfplay.group_size": 4, "zeta": 1, "only.one": True}},
               {"id": 2, "values": {"preset": "cpu-demo", "selfplay.group_size": 8, "zeta": 1}},
               {"id": 3, "values": {"preset": "paper-7b", "selfplay.group_size": 4, "zeta": 1}}]

    rows = dashboard.config_table(columns, order=["preset", "selfplay.group_size"])

    assert rows == [{"field": "preset", "values": ["cpu-demo", "cpu-demo", "paper-7b"]},
                    {"field": "selfplay.group_size", "values": [4, 8, 4]},
                    {"field": "only.one", "values": [True, "—", "—"]}]


@pytest.mark.parametrize("raw,expected", [(None, 2000), ("", 2000), ("10", 10), ("20000", 20000)])
def test_it_parses_max_points(raw, expected):
    assert dashboard.parse_max_points(raw) == expected


@pytest.mark.parametrize("raw", ["abc", "9", "20001", "-5", "1e3"])
def test_it_rejects_bad_max_points(raw):
    with pytest.raises(ValueError):
        dashboard.parse_max_points(raw)


def test_it_parses_ids_and_names():
    assert dashboard.parse_ids("3, 7,3") == [3, 7]
    assert dashboard.parse_names("reward.responder, eval.sets.x.mean@k") == ["reward.responder", "eval.sets.x.mean@k"]
    assert dashboard.parse_names("") is None
    for bad in ("3", "3,x", "", "1,2,3,4,5,6,7"):
        with pytest.raises(ValueError):
            dashboard.parse_ids(bad)
    with pytest.raises(ValueError):
        dashboard.parse_names("reward.responder,<script>")
