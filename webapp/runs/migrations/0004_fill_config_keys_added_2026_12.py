"""Runs store their frozen, fully resolved config (Run.config). Knobs added to spell's RunConfig
since (the paper-7b fidelity work and the small-model preset, 2026-12) are absent from the configs
of older runs, and a config read without them takes today's defaults: paper-7b's. A resumed or
cloned old run would then change behaviour half-way (a fixed verifier quota of 0 groups, the
unbiased std over one sample, the release prompts). This fills each absent knob with the value
that reproduces what the run did when it was launched; knobs a config already has are left alone.

The values are frozen here on purpose: they describe the code of 2026-11, whatever spell's
defaults become later.
"""

from django.db import migrations

BEHAVIOUR_BEFORE_2026_12 = {
    "selfplay": {
        "verifier_batch": "share",  # round(verifier_share x eligible groups)
        "verifier_tasks": ["doc_general_qa", "doc_mc", "docmath_qa"],
        "question_quality_filter": False,
        "verifier_model": "",
        "mode": "spell",
        "rlvr_set": "",
    },
    "memory": {"overflow": "skip"},
    "sampling": {"questioner_max_tokens": 0, "responder_max_tokens": 0, "verifier_max_tokens": 0},
    "prompts": {"style": "small", "strict_record": False},
    "structured": {"responder": False, "grounded": False},
    "loss": {"per_role_mean": True, "advantage_std": "population", "dual_clip": 0.0},
    "run": {"time_budget_minutes": 0.0},
}


def fill(config: dict) -> bool:
    """Add the absent knobs to one stored config in place; True when it changed."""
    changed = False
    for section, knobs in BEHAVIOUR_BEFORE_2026_12.items():
        stored = config.setdefault(section, {})
        if not isinstance(stored, dict):
            continue
        for name, value in knobs.items():
            if name not in stored:
                stored[name] = value
                changed = True
    return changed


def forwards(apps, schema_editor):
    Run = apps.get_model("runs", "Run")
    for run in Run.objects.only("id", "config").iterator():
        if isinstance(run.config, dict) and fill(run.config):
            run.save(update_fields=["config"])


class Migration(migrations.Migration):

    dependencies = [
        ("runs", "0003_run_audit_settings"),
    ]

    operations = [
        migrations.RunPython(forwards, migrations.RunPython.noop),
    ]
