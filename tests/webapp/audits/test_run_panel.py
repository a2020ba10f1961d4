"""`{% review_panel run %}` for the run page: the charts' hook and the server-rendered alarm."""

from django.template import Context, Template

from webapp.audits.models import Label, ReviewItem

from .conftest import make_run, queue_item


def render(run):
    return Template("{% load audits %}{% review_panel run %}").render(Context({"run": run}))


def test_it_renders_the_chart_hook_without_an_alarm(people, run):
    html = render(run)
    assert f'data-url="/review/runs/{run.pk}/metrics.json"' in html
    assert "plotly/plotly.min.js" in html and "studio/review.js" in html
    assert "false-accept-alarm" not in html


def test_it_shows_the_alarm_when_it_fires(people):
    run = make_run(people.team, audit={"false_accept_alarm": 0.3})
    for step in range(8):
        item = queue_item(run, verifier_yes=True, step=step)
        Label.objects.create(item=item, annotator=people.annotator, label="not_equivalent")
        ReviewItem.objects.filter(pk=item.pk).update(label_count=1)
    html = render(run)
    assert 'id="false-accept-alarm"' in html and "threshold 0.30" in html
