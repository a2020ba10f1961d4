"""`{% decontamination_note run %}`: on the run page, what the run's corpus snapshot left out as
copies of its evaluation sets (OUT/decontamination.json, written by the worker at launch): the
count and the first 50 titles. Nothing when the run had no evaluation sets or has not started."""

from __future__ import annotations

import json
from pathlib import Path

from django import template

from spell.rundir import DECONTAMINATION

register = template.Library()


def run_decontamination(run) -> dict | None:
    """The launch report's summary (spell.data.decontam.report_summary), or None."""
    from spell.data.decontam import report_summary

    if not getattr(run, "run_dir", ""):
        return None
    try:
        report = json.loads((Path(run.run_dir) / DECONTAMINATION).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return report_summary(report) if isinstance(report, dict) else None


@register.inclusion_tag("runs/_decontamination.html")
def decontamination_note(run):
    return {"run": run, "decontamination": run_decontamination(run)}
