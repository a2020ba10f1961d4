"""The dashboard's endpoints: series.json, alarms.json, triples.json, the sample page, compare."""

from __future__ import annotations

import pytest

from webapp.runs.models import MetricPoint, Run, RunEvent, Sample

from tests.webapp.runs.factories import make_run


def metrics_event(run, seq, step, payload, type_="metrics"):
    """A stored metrics event with its points, as the relay stores them (flattened names)."""
    RunEvent.objects.create(run=run, seq=seq, step=step, type=type_, payload=payload)

    def flat(d, prefix=""):
        for k, v in d.items():
            if isinstance(v, dict):
                yield from flat(v, f"{prefix}{k}.")
            else:
                yield f"{prefix}{k}", v

    prefix = "eval." if type_ == "eval" else ""
    MetricPoint.objects.bulk_create([MetricPoint(run=run, seq=seq, step=step, name=f"{prefix}{n}", value=v)
                                     for n, v in flat(payload)])
    Run.objects.filter(pk=run.pk).update(last_seq=seq, last_step=step)


@pytest.fixture
def metrics_run(run):
    for step in range(1, 13):
        metrics_event(run, step - 1, step, {"reward": {"responder": step / 10, "questioner": None},
                                            "responder": {"truncated_rate": 0.9, "keep_ratio": 0.5},
                                            "task": {"doc_mc": {"pass_rate": 0.25}}, "train": {"kl": 0.01}})
    metrics_event(run, 12, 12, {"sets": {"hotpot": {"mean@k": 0.4, "pass@k": 0.7, "items": 10}}, "mean": 0.4}, "eval")
    run.refresh_from_db()
    return run


def sample(run, seq, step=1, index=0, **kw):
    fields = {"task": "doc_mc", "question": "Which colour?", "reference": "B", "response": "B", "verdict": "YES",
              "majority": "1", "rule_score": 1.0, "votes": [1, 1]}
    fields.update(kw)
    return Sample.objects.create(run=run, seq=seq, index=index, step=step, **fields)


# --- series.json ---------------------------------------------------------------------------------


def test_it_returns_the_charted_series_and_alarms(owner_client, metrics_run):
    data = owner_client.get(f"/runs/{metrics_run.pk}/series.json").json()

    assert data["last_seq"] == 12 and data["last_step"] == 12 and data["max_points"] == 2000
    assert data["series"]["reward.responder"] == {"steps": list(range(1, 13)), "values": [s / 10 for s in range(1, 13)],
                                                  "total": 12, "downsampled": False}
    assert data["series"]["reward.questioner"]["values"] == [None] * 12
    assert data["series"]["eval.sets.hotpot.pass@k"]["values"] == [0.7]
    assert "eval.sets.hotpot.items" not in data["series"]  # not on a chart
    charts = {c["key"]: c for c in data["charts"]}
    assert [t["name"] for t in charts["pass_rate"]["traces"]] == ["task.doc_mc.pass_rate"]
    assert [a["code"] for a in data["alarms"]] == ["truncated"]


def test_it_downsamples_to_max_points_and_filters_names(owner_client, metrics_run):
    data = owner_client.get(f"/runs/{metrics_run.pk}/series.json?names=reward.responder,nothing.here&max_points=10").json()

    assert list(data["series"]) == ["reward.responder"]
    # 12 rising points, 5 buckets at indexes 0,2,4,7,9,12 -> steps [1,2] [3,4] [5,6,7] [8,9] [10,11,12];
    # each keeps its min (first) and max (last)
    assert data["series"]["reward.responder"]["steps"] == [1, 2, 3, 4, 5, 7, 8, 9, 10, 12]
    assert data["series"]["reward.responder"]["downsampled"] is True


def test_it_leaves_out_points_after_last_seq_and_superseded_ones(owner_client, metrics_run):
    MetricPoint.objects.filter(run=metrics_run, step=12).update(superseded=True)
    MetricPoint.objects.create(run=metrics_run, seq=99, step=13, name="reward.responder", value=5.0)  # not yet counted

    data = owner_client.get(f"/runs/{metrics_run.pk}/series.json?names=reward.responder").json()

    assert data["series"]["reward.responder"]["steps"] == list(range(1, 12))


def test_it_answers_an_empty_run(owner_client, run):
    data = owner_client.get(f"/runs/{run.pk}/series.json").json()

    assert data["series"] == {} and data["alarms"] == [] and data["last_seq"] == -1


@pytest.mark.parametrize("query", ["max_points=abc", "max_points=5", "max_points=100000", "names=a;drop"])
def test_it_rejects_bad_series_parameters(owner_client, run, query):
    response = owner_client.get(f"/runs/{run.pk}/series.json?{query}")

    assert response.status_code == 400 and "error" in response.json()


@pytest.mark.parametrize("url", ["series.json", "alarms.json", "triples.json"])
@pytest.mark.parametrize("who,status", [("owner", 200), ("teammate", 200), ("admin", 200), ("outsider", 404),
                                        ("annotator", 403)])
def test_it_checks_access_to_the_json(client, run, request, url, who, status):
    client.force_login(request.getfixturevalue(who))

    response = client.get(f"/runs/{run.pk}/{url}")

    assert response.status_code == status and response["Content-Type"] == "application/json"


@pytest.mark.parametrize("url", ["series.json", "alarms.json", "triples.json"])
def test_it_answers_json_401_to_anonymous_and_404_to_missing_runs(client, owner_client, run, url):
    assert owner_client.get(f"/runs/999/{url}").status_code == 404
    owner_client.logout()
    assert client.get(f"/runs/{run.pk}/{url}").status_code == 401


def test_it_rejects_posts(owner_client, run):
    assert owner_client.post(f"/runs/{run.pk}/series.json").status_code == 405


def test_it_returns_alarms(owner_client, metrics_run):
    data = owner_client.get(f"/runs/{metrics_run.pk}/alarms.json").json()

    assert data["last_step"] == 12
    [alarm] = data["alarms"]
    assert alarm["code"] == "truncated" and alarm["value"] == 0.9 and alarm["steps"] == [3, 12]


# --- triples.json --------------------------------------------------------------------------------


def test_it_pages_triples_newest_first(owner_client, run):
    ids = [sample(run, seq=i, step=i).id for i in range(5)]

    first = owner_client.get(f"/runs/{run.pk}/triples.json?limit=2").json()
    second = owner_client.get(f"/runs/{run.pk}/triples.json?limit=2&before_id={first['next_before_id']}").json()
    last = owner_client.get(f"/runs/{run.pk}/triples.json?limit=2&before_id={second['next_before_id']}").json()

    assert [s["id"] for s in first["samples"]] == ids[:2:-1] and first["more"]
    assert [s["id"] for s in second["samples"]] == ids[2:0:-1] and second["more"]
    assert [s["id"] for s in last["samples"]] == ids[:1] and not last["more"]


def test_it_filters_triples(owner_client, run):
    a = sample(run, 0, step=1, task="doc_mc", extra={"questioner_status": "valid"})
    b = sample(run, 1, step=2, task="docmath_qa", verdict="NO", majority="0", disagreement=True)
    c = sample(run, 2, step=2, task="doc_mc", response="", verdict="SKIPPED", votes=[],
               extra={"questioner_status": "format_error"})
    d = sample(run, 3, step=3, votes=[1, 0, 1], split_votes=True, question="Q" * 1000)

    def ids(query):
        return [s["id"] for s in owner_client.get(f"/runs/{run.pk}/triples.json?{query}").json()["samples"]]

    assert ids("task=docmath_qa") == [b.id]
    assert ids("verdict=NO") == [b.id]
    assert ids("disagreement=1") == [b.id]
    assert ids("split_votes=1") == [d.id]
    assert ids("step=2") == [c.id, b.id]
    assert ids("role=questioner") == [c.id]
    assert ids("role=responder") == [d.id, b.id, a.id]
    assert ids("role=verifier") == [d.id, b.id, a.id]
    rows = owner_client.get(f"/runs/{run.pk}/triples.json").json()["samples"]
    assert rows[1]["questioner_status"] == "format_error" and rows[3]["questioner_status"] == "valid"
    assert rows[0]["question"] == "Q" * 600 + "…"


@pytest.mark.parametrize("query", ["before_id=x", "limit=0", "limit=201", "role=judge", "step=two", "disagreement=maybe"])
def test_it_rejects_bad_triple_filters(owner_client, run, query):
    response = owner_client.get(f"/runs/{run.pk}/triples.json?{query}")

    assert response.status_code == 400 and "error" in response.json()


# --- the sample page -----------------------------------------------------------------------------


def test_it_shows_a_sample_with_its_documents(owner_client, run):
    s = sample(run, 0, extra={"doc_ids": ["d0", "d1"], "responder_doc_ids": ["d0", "gone"], "cluster": "c0",
                              "verifier_outputs": ["Equivalent. YES", "NO they differ"], "questioner_status": "valid",
                              "options": {"A": "Red", "B": "Blue"}}, votes=[1, 0])

    response = owner_client.get(f"/runs/{run.pk}/samples/{s.pk}/")

    html = response.content.decode()
    assert response.status_code == 200
    assert "Which colour?" in html and "Blue" in html and "Equivalent. YES" in html
    assert "Document 0 says the answer is 0." in html and "Document 1 says the answer is 1." in html
    assert "not in the run's corpus any more" in html  # "gone" (literal text in the template)
    docs = {d["id"]: (d["questioner"], d["responder"]) for d in response.context["documents"]}
    assert docs == {"d0": (True, True), "d1": (True, False), "gone": (False, True)}


def test_it_redirects_a_live_triple_to_its_page(owner_client, run):
    s = sample(run, 7, index=1)

    response = owner_client.get(f"/runs/{run.pk}/samples/seq/7/1/")

    assert response.status_code == 302 and response["Location"] == f"/runs/{run.pk}/samples/{s.pk}/"
    assert owner_client.get(f"/runs/{run.pk}/samples/seq/7/5/").status_code == 404


@pytest.mark.parametrize("who,status", [("owner", 200), ("outsider", 404), ("annotator", 403)])
def test_it_checks_access_to_the_sample_page(client, run, request, who, status):
    s = sample(run, 0)
    client.force_login(request.getfixturevalue(who))

    assert client.get(f"/runs/{run.pk}/samples/{s.pk}/").status_code == status


def test_it_does_not_show_another_runs_sample(owner_client, run, team, corpus, model_entry, owner):
    other = make_run(team, corpus, model_entry, name="other", user=owner)
    s = sample(other, 0)

    assert owner_client.get(f"/runs/{run.pk}/samples/{s.pk}/").status_code == 404


# --- compare -------------------------------------------------------------------------------------


def test_it_overlays_two_runs_beside_their_config_diff(owner_client, metrics_run, team, corpus, model_entry, owner):
    other = make_run(team, corpus, model_entry, name="bigger groups", user=owner, overrides={"selfplay.group_size": 3})
    metrics_event(other, 0, 1, {"reward": {"responder": 0.7}})

    response = owner_client.get(f"/runs/compare?ids={metrics_run.pk},{other.pk}")

    assert response.status_code == 200
    diff = {row["field"]: row["values"] for row in response.context["diff"]}
    assert diff["selfplay.group_size"][1] == 3 and diff["selfplay.group_size"][0] != 3
    charts = {c["key"]: c for c in response.context["charts"]}
    assert [(t["run"], t["values"][-1]) for t in charts["reward"]["traces"] if t["metric"] == "reward.responder"] == [
        (metrics_run.pk, 1.2), (other.pk, 0.7)]
    html = response.content.decode()
    assert 'id="compare-data"' in html and "studio/dashboard.js" in html and "plotly/plotly.min.js" in html


def test_it_accepts_ids_from_the_run_page_form(owner_client, run, team, corpus, model_entry, owner):
    other = make_run(team, corpus, model_entry, name="two", user=owner)

    assert owner_client.get(f"/runs/compare?ids={run.pk}&ids={other.pk}").status_code == 200


@pytest.mark.parametrize("query", ["", "ids=1", "ids=a,b", "ids=1,2,3,4,5,6,7", "ids=1,2&max_points=x"])
def test_it_rejects_bad_compare_ids(owner_client, run, query):
    response = owner_client.get(f"/runs/compare?{query}")

    assert response.status_code == 400 and "compare-error" in response.content.decode()


def test_it_hides_runs_of_other_teams_from_compare(client, run, outsider, other_team, corpus, model_entry, owner, team):
    other = make_run(team, corpus, model_entry, name="two", user=owner)
    client.force_login(outsider)

    assert client.get(f"/runs/compare?ids={run.pk},{other.pk}").status_code == 404
    client.force_login(owner)
    assert client.get(f"/runs/compare?ids={run.pk},999").status_code == 404


def test_it_redirects_anonymous_users_from_the_pages(client, run):
    assert client.get(f"/runs/compare?ids={run.pk},2").status_code == 302
    assert client.get(f"/runs/{run.pk}/samples/1/").status_code == 302


# --- the run page --------------------------------------------------------------------------------


def test_it_puts_the_dashboard_on_the_run_page(owner_client, run):
    html = owner_client.get(f"/runs/{run.pk}/").content.decode()

    assert 'id="dashboard"' in html and f'data-series-url="/runs/{run.pk}/series.json"' in html
    assert 'id="triple-filters"' in html and 'id="dash-alarms"' in html
    assert "plotly/plotly.min.js" in html and "studio/dashboard.js" in html
    assert html.index("studio/dashboard.js") < html.index("studio/run.js")


def test_the_series_say_the_runs_state_and_each_axis_kind(owner_client, metrics_run):
    data = owner_client.get(f"/runs/{metrics_run.pk}/series.json").json()

    charts = {c["key"]: c for c in data["charts"]}
    assert data["state"] == metrics_run.state  # the page says "Live" only while RUNNING
    assert charts["reward"]["y_kind"] == "reward" and charts["curriculum"]["y_kind"] == "stage"
    assert charts["time"]["stacked"] and not charts["throughput"]["stacked"]


def test_the_run_page_header_shows_the_curriculum_stage(owner_client, run):
    html = owner_client.get(f"/runs/{run.pk}/").content.decode()
    assert 'id="run-stage"' in html and 'id="run-stage" style="display:inline-block" data-stage=""' in html
    assert html[html.index('id="run-stage"'):].split(">", 1)[0].endswith(" hidden")  # nothing reported yet

    stages = run.config["length_curriculum"]["stages"]
    RunEvent.objects.create(run=run, seq=0, step=0, type="stage", payload={
        "reason": "start", "stage": 0, "max_context": 1536, "stages": stages, "rolling_accuracy": None})
    MetricPoint.objects.bulk_create([MetricPoint(run=run, seq=0, step=0, name="stage.stage", value=0),
                                     MetricPoint(run=run, seq=0, step=0, name="stage.max_context", value=1536)])

    html = owner_client.get(f"/runs/{run.pk}/").content.decode()

    badge = html[html.index('id="run-stage"'):html.index("</small>", html.index('id="run-stage"'))]
    assert 'data-stage="0"' in badge and f'data-total="{len(stages)}"' in badge and " hidden" not in badge.split(">")[0]
    assert '<span id="run-stage-number">1</span>' in badge and f'<span id="run-stage-total">{len(stages)}</span>' in badge
    assert '<span id="run-stage-context">1,536</span> tokens' in badge
    off = not run.config["length_curriculum"]["enabled"]
    assert ("(curriculum off)" in badge) is off and (f'data-curriculum="{"off" if off else "on"}"' in badge)


def test_the_run_page_rounds_metrics_and_sample_scores(owner_client, run):
    metrics_event(run, 0, 1, {"task": {"doc_mc": {"questioner_reward": 0.32465246735834974}},
                              "context_tokens": {"max": 16384.0}, "reward": {"rule": None}})
    sample(run, 1, rule_score=0.6666666666666666)

    html = owner_client.get(f"/runs/{run.pk}/").content.decode()

    table = html[html.index('id="metrics-table"'):html.index("</table>", html.index('id="metrics-table"'))]
    assert '<td title="0.32465246735834974">0.325</td>' in table and ">16,384</td>" in table and ">—</td>" in table
    assert "0.32465246735834974<" not in html
    samples = html[html.index('id="samples-table"'):html.index("</table>", html.index('id="samples-table"'))]
    assert "<td>0.667</td>" in samples and "0.6666" not in samples


def test_the_sample_page_rounds_rewards(owner_client, run):
    s = sample(run, 0, rule_score=0.3333333333333333, rewards={"questioner": 0.32465246735834974, "responder": 1.0},
               extra={"rbar": 0.5833333333333334, "grounding_score": 0.0})

    html = owner_client.get(f"/runs/{run.pk}/samples/{s.pk}/").content.decode()

    rewards = html[html.index("<th>Rewards</th>"):html.index("</tr>", html.index("<th>Rewards</th>"))]
    assert "questioner 0.325 · responder 1" in rewards and "group mean 0.583" in rewards
    assert "rule score 0.333" in html and "0.3333333" not in html and "0.32465" not in html


def test_the_overlay_box_names_no_run_until_one_is_chosen(owner_client, run, team, corpus, model_entry, owner):
    make_run(team, corpus, model_entry, user=owner, name="other")

    html = owner_client.get(f"/runs/{run.pk}/").content.decode()

    box = html[html.index('id="dash-compare"'):html.index("</form>", html.index('id="dash-compare"'))]
    assert '<select name="ids" id="overlay-run" required><option value="" selected>choose a run…</option>' in box
    assert box.count(" selected") == 1


def test_the_log_wraps_inside_its_box_and_the_review_panel_has_no_fixed_gap(owner_client, run):
    html = owner_client.get(f"/runs/{run.pk}/").content.decode()

    assert '<pre id="run-log" class="run-log">' in html
    assert ".run-log { white-space:pre-wrap; overflow-wrap:anywhere; overflow-x:auto;" in html
    # The verifier panel's chart div gets its height only while it is not the one-line "no labels" note.
    assert '<div id="review-chart"></div>' in html and "#review-chart:has(> p) { height:auto; }" in html
