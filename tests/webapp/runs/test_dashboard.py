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


# --- chart definitions, numbers, the stage badge -------------------------------------------------


def test_every_chart_says_what_its_axes_hold_and_no_name_is_charted_twice():
    seen: dict[str, str] = {}
    for chart in dashboard.CHARTS:
        assert chart.get("y_kind", "free") in dashboard.AXIS_KINDS and chart.get("y2_kind", "free") in dashboard.AXIS_KINDS
        assert "y2_title" in chart if chart.get("y2") else True
        for name in chart["metrics"] + chart.get("y2", []):
            assert name not in seen, f"{name} on {seen.get(name)} and {chart['key']}"
            seen[name] = chart["key"]
    kinds = {c["key"]: (c["y_kind"], c.get("y2_kind")) for c in dashboard.CHARTS}
    assert kinds["curriculum"] == ("stage", "amount")  # whole-number stage ticks; max context from 0
    assert kinds["pass_rate"][0] == kinds["verifier"][0] == kinds["eval"][0] == "share"
    assert kinds["reward"][0] == "reward"
    # Stacked: parts of one whole only (the questioner counts overlap, so they are lines).
    assert [c["key"] for c in dashboard.CHARTS if c.get("stacked")] == ["time"]


def test_the_chart_groups_carry_the_axis_kinds():
    groups = {g["key"]: g for g in dashboard.chart_groups(["curriculum.stage", "curriculum.max_context"])}

    assert groups["curriculum"]["y_kind"] == "stage" and groups["curriculum"]["y2_kind"] == "amount"
    assert groups["curriculum"]["traces"] == [{"name": "curriculum.stage", "axis": "y"},
                                              {"name": "curriculum.max_context", "axis": "y2"}]
    assert groups["time"]["stacked"] and groups["loss"]["y_kind"] == "free"


@pytest.mark.parametrize("value,text", [
    (0.32465246735834974, "0.325"), (347.57203244511265, "348"), (34.77, "34.8"), (1.6975, "1.7"),
    (0.0177, "0.0177"), (-0.5, "-0.5"), (2.0, "2"), (0, "0"), (16384.0, "16,384"), (1536, "1,536"),
    (838.4, "838"), (None, "—"), (float("nan"), "—"), (float("inf"), "—"), ("YES", "YES"), (True, "True"),
])
def test_it_rounds_numbers_for_people(value, text):
    assert dashboard.format_number(value) == text


def rows(**values):
    return [{"name": n.replace("__", "."), "step": s, "value": v} for n, (s, v) in values.items()]


def test_the_stage_badge_reads_the_newest_stage_or_curriculum_values():
    config = {"length_curriculum": {"enabled": True, "stages": [1024, 2048, 4096]}}

    assert dashboard.stage_badge([], config) is None
    start = dashboard.stage_badge(rows(stage__stage=(0, 0), stage__max_context=(0, 1024)), config)
    assert start == {"stage": 0, "number": 1, "total": 3, "max_context": 1024, "enabled": True, "step": 0}
    later = rows(stage__stage=(0, 0), stage__max_context=(0, 1024), curriculum__stage=(3, 0),
                 curriculum__max_context=(3, 1024))
    assert dashboard.stage_badge(later, config)["step"] == 3
    # A promotion at step 5: the stage event follows that step's metrics and wins the tie.
    promoted = rows(curriculum__stage=(5, 0), curriculum__max_context=(5, 1024), stage__stage=(5, 1),
                    stage__max_context=(5, 2048))
    assert {k: dashboard.stage_badge(promoted, config)[k] for k in ("number", "max_context")} == {"number": 2, "max_context": 2048}


def test_the_stage_badge_says_when_the_curriculum_is_off():
    off = {"length_curriculum": {"enabled": False, "stages": [4096, 8192, 16384]}}

    badge = dashboard.stage_badge(rows(curriculum__stage=(1, 2), curriculum__max_context=(1, 2048)), off)

    assert badge == {"stage": 2, "number": 3, "total": 3, "max_context": 2048, "enabled": False, "step": 1}
    # No stages in the config (an older run): the total is at least the stage shown.
    assert dashboard.stage_badge(rows(curriculum__stage=(1, 4)), {})["total"] == 5
    assert dashboard.stage_badge(rows(curriculum__stage=(1, None)), off) is None
