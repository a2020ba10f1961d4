"""Migration 0004 fills the knobs added since a run was launched with what that run did."""

import copy
import importlib

from spell.config import RunConfig, preset

migration = importlib.import_module("webapp.runs.migrations.0004_fill_config_keys_added_2026_12")


def stored_before_2026_12(name):
    """A config as a run launched in 2026-11 stored it: today's sections less the knobs added since."""
    config = preset(name).to_dict()
    for section, knobs in migration.BEHAVIOUR_BEFORE_2026_12.items():
        for knob in knobs:
            config[section].pop(knob, None)
    config.pop("prompts")  # the whole section is newer
    # Knobs added after this migration need none: their defaults are the behaviour before them.
    config.pop("warmup")
    config["structured"].pop("cloze_questions")
    return config


def test_every_filled_knob_is_a_knob_of_today():
    fields = RunConfig().to_dict()
    for section, knobs in migration.BEHAVIOUR_BEFORE_2026_12.items():
        assert set(knobs) <= set(fields[section]), (section, set(knobs) - set(fields[section]))


def test_an_old_cpu_demo_run_keeps_its_behaviour_and_present_knobs_stay():
    config = stored_before_2026_12("cpu-demo")
    config["loss"]["advantage_std"] = "unbiased"  # a knob the run already had stays as it was
    assert migration.fill(config)
    cfg = RunConfig.from_dict(config)
    # not today's paper-7b defaults: the old share rule, the small prompts, no grounded records
    assert cfg.selfplay.verifier_batch == "share" and cfg.prompts.style == "small"
    assert not cfg.prompts.strict_record and not cfg.structured.grounded and not cfg.selfplay.question_quality_filter
    assert cfg.loss.per_role_mean and cfg.loss.dual_clip == 0.0 and cfg.memory.overflow == "skip"
    assert cfg.loss.advantage_std == "unbiased"
    assert cfg.validate() is not None
    # a second pass changes nothing; a complete config of today is untouched
    assert not migration.fill(config)
    today = preset("cpu-demo").to_dict()
    assert not migration.fill(copy.deepcopy(today))
