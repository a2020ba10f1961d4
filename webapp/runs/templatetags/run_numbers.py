"""Numbers on the run pages: `{{ value|num }}` rounds a metric value as the charts' hover does
(3 significant digits, webapp/runs/dashboard.format_number), and `{% stage_badge run metrics as stage %}`
gives the header's curriculum badge (dashboard.stage_badge)."""

from __future__ import annotations

from django import template

from webapp.runs import dashboard

register = template.Library()


@register.filter
def num(value):
    """0.32465246735834974 -> 0.325; None -> —; text stays text."""
    return dashboard.format_number(value)


@register.simple_tag
def stage_badge(run, metrics):
    """The curriculum stage from the newest metric rows the view already read (no query)."""
    return dashboard.stage_badge(metrics or [], run.config if isinstance(run.config, dict) else {})
