import json

import pytest

from spell.config import (
    TASKS,
    ConfigError,
    RunConfig,
    describe_fields,
    load_config,
    preset,
    validate,
    with_overrides,
)


def fields_of(errors):
    return {e.field for e in errors}


def test_defaults_are_the_papers_setting():
    cfg = RunConfig()
    assert cfg == preset("paper-7b")
    assert cfg.selfplay.group_size == 8
    assert cfg.selfplay.verifier_samples == 8
    assert cfg.selfplay.batch_groups == 128
    assert cfg.selfplay.max_generation_batches == 10
    assert cfg.selfplay.verifier_share == 0.125
    assert cfg.rewards.sigma == pytest.approx(0.5 / 3)
    assert cfg.rewards.questioner_mode == "gaussian"
    assert cfg.rewards.ungrounded_penalty == -0.5 and cfg.rewards.format_penalty == -1.0
    assert cfg.memory.depth == 3 and cfg.memory.new_docs_per_round == 5
    assert cfg.tasks.docs_per_question == 5
    assert set(cfg.tasks.mix) == set(TASKS) and len(set(cfg.tasks.mix.values())) == 1
    assert (cfg.sampling.temperature, cfg.sampling.top_p) == (0.7, 0.95)
    assert cfg.sampling.max_response_tokens == 4096
    assert (cfg.optim.lr, cfg.optim.weight_decay, cfg.optim.grad_clip) == (2e-6, 0.01, 1.0)
    assert cfg.optim.schedule == "constant"
    assert (cfg.loss.clip, cfg.loss.aggregation, cfg.loss.kl_coef, cfg.loss.entropy_coef) == (
        0.2,
        "token-mean",
        0.0,
        0.0,
    )
    assert cfg.eval.every_steps == 10 and cfg.eval.at_start and cfg.eval.samples == 8
    assert cfg.checkpoint.every_steps == 10
    assert cfg.structured.questioner is False and cfg.structured.verifier is False
    assert cfg.length_curriculum.stages[-1] == 16384
    assert validate(cfg) == []
    # 16K context needs a model with ~22K positions.
    assert validate(cfg, model_max_positions=32768) == []
    assert "sampling.max_prompt_tokens" in fields_of(validate(cfg, model_max_positions=16384))


def test_cpu_demo_fits_smollm2():
    cfg = preset("cpu-demo")
    assert validate(cfg, model_max_positions=8192) == []
    assert cfg.selfplay.group_size == 4 and cfg.selfplay.verifier_samples == 4
    assert cfg.selfplay.questions_per_task <= 2
    assert cfg.selfplay.batch_groups <= 8
    assert cfg.selfplay.max_generation_batches <= 2
    assert cfg.structured.questioner and cfg.structured.verifier
    assert max(cfg.length_curriculum.stages) <= 2048
    assert cfg.sampling.max_response_tokens <= 256
    assert cfg.trainer.device == "cpu" and cfg.engine.name == "hf"


def test_unknown_preset():
    with pytest.raises(ConfigError) as exc:
        preset("nope")
    assert exc.value.field == "preset"


@pytest.mark.parametrize("name", ["paper-7b", "cpu-demo"])
def test_dict_round_trip_is_json_safe(name):
    cfg = preset(name)
    data = json.loads(json.dumps(cfg.to_dict()))
    assert RunConfig.from_dict(data) == cfg
    assert isinstance(data["optim"]["betas"], list)
    assert RunConfig.from_dict(data).optim.betas == (0.9, 0.999)


def test_with_overrides_copies_and_coerces():
    cfg = RunConfig()
    out = with_overrides(cfg, {"selfplay.group_size": 4, "optim.lr": 1, "optim.betas": [0.8, 0.9]})
    assert out.selfplay.group_size == 4 and cfg.selfplay.group_size == 8
    assert out.optim.lr == 1.0 and isinstance(out.optim.lr, float)
    assert out.optim.betas == (0.8, 0.9)


@pytest.mark.parametrize(
    "overrides, field",
    [
        ({"selfplay.nope": 1}, "selfplay.nope"),
        ({"nope.group_size": 1}, "nope.group_size"),
        ({"selfplay.group_size": "eight"}, "selfplay.group_size"),
        ({"selfplay.group_size": True}, "selfplay.group_size"),
        ({"memory.enabled": 1}, "memory.enabled"),
        ({"length_curriculum.stages": 1024}, "length_curriculum.stages"),
    ],
)
def test_bad_overrides_name_the_field(overrides, field):
    with pytest.raises(ConfigError) as exc:
        with_overrides(RunConfig(), overrides)
    assert exc.value.field == field


@pytest.mark.parametrize(
    "overrides, field",
    [
        ({"selfplay.group_size": 1}, "selfplay.group_size"),
        ({"rewards.sigma": 0.0}, "rewards.sigma"),
        ({"rewards.sigma": -0.1}, "rewards.sigma"),
        ({"rewards.questioner_mode": "cubic"}, "rewards.questioner_mode"),
        ({"rewards.majority": "mode"}, "rewards.majority"),
        ({"rewards.verifier_eligibility": "all"}, "rewards.verifier_eligibility"),
        ({"memory.admission": "always"}, "memory.admission"),
        ({"loss.aggregation": "sum"}, "loss.aggregation"),
        ({"loss.kl_estimator": "k9"}, "loss.kl_estimator"),
        ({"optim.lr": 0.0}, "optim.lr"),
        ({"optim.lr": -1e-6}, "optim.lr"),
        ({"selfplay.verifier_share": 1.5}, "selfplay.verifier_share"),
        ({"selfplay.verifier_share": -0.1}, "selfplay.verifier_share"),
        ({"selfplay.grounding_threshold": 2.0}, "selfplay.grounding_threshold"),
        ({"sampling.top_p": 0.0}, "sampling.top_p"),
        ({"tasks.mix": {"doc_mc": 0, "doc_general_qa": 0}}, "tasks.mix"),
        ({"tasks.mix": {"poetry": 1}}, "tasks.mix"),
        ({"tasks.mix": {"doc_mc": -1, "docmath_qa": 1}}, "tasks.mix"),
        ({"length_curriculum.stages": [4096, 2048]}, "length_curriculum.stages"),
        ({"length_curriculum.stages": []}, "length_curriculum.stages"),
        ({"length_curriculum.stages": [99999]}, "length_curriculum.stages"),
        ({"trainer.zero_stage": 4}, "trainer.zero_stage"),
        ({"trainer.backend": "jax"}, "trainer.backend"),
        ({"engine.name": "tgi"}, "engine.name"),
        ({"loss.clip": 0.0}, "loss.clip"),
        ({"model.path": ""}, "model.path"),
        ({"rewards.format_penalty": 1.0}, "rewards.format_penalty"),
        ({"model.max_positions": 8192}, "sampling.max_prompt_tokens"),
    ],
)
def test_validate_names_every_bad_value(overrides, field):
    cfg = with_overrides(RunConfig(), overrides)
    errors = validate(cfg)
    assert field in fields_of(errors), errors
    with pytest.raises(ConfigError) as exc:
        cfg.validate()
    assert field in fields_of(exc.value.errors)
    assert all(e.reason for e in exc.value.errors)


def test_validate_reports_several_errors_at_once():
    cfg = with_overrides(RunConfig(), {"selfplay.group_size": 1, "rewards.sigma": 0.0})
    assert {"selfplay.group_size", "rewards.sigma"} <= fields_of(validate(cfg))


def test_validate_catches_wrong_types_set_by_hand():
    cfg = RunConfig()
    cfg.selfplay.group_size = "8"
    assert fields_of(validate(cfg)) == {"selfplay.group_size"}


def test_prompt_plus_response_must_fit_the_model():
    cfg = preset("cpu-demo")
    errors = validate(cfg, model_max_positions=2048)
    assert "sampling.max_prompt_tokens" in fields_of(errors)
    # the config's own max_positions wins over the model's
    cfg = with_overrides(cfg, {"model.max_positions": 16384})
    assert validate(cfg, model_max_positions=2048) == []


def test_load_toml_with_preset_and_overrides(tmp_path):
    path = tmp_path / "run.toml"
    path.write_text(
        'preset = "cpu-demo"\n'
        "[selfplay]\ngroup_size = 6\n"
        "[rewards]\nquestioner_mode = \"rzero\"\n"
        "[tasks.mix]\ndoc_mc = 1\n"
    )
    cfg = load_config(path)
    assert cfg.selfplay.group_size == 6
    assert cfg.rewards.questioner_mode == "rzero"
    assert cfg.tasks.mix == {"doc_mc": 1.0}
    assert cfg.structured.questioner is True  # from the preset
    assert validate(cfg, 8192) == []


def test_load_json(tmp_path):
    path = tmp_path / "run.json"
    data = preset("cpu-demo").to_dict()
    data["run"]["seed"] = 7
    path.write_text(json.dumps(data))
    cfg = load_config(path)
    assert cfg.run.seed == 7
    assert with_overrides(cfg, {"run.seed": preset("cpu-demo").run.seed}) == preset("cpu-demo")


@pytest.mark.parametrize(
    "text, field",
    [
        ("[selfplay]\ngroup_sise = 4\n", "selfplay.group_sise"),
        ("[selfply]\ngroup_size = 4\n", "selfply"),
        ('preset = "gpu-huge"\n', "preset"),
        ("[selfplay\n", "<file>"),
    ],
)
def test_bad_files_name_the_key(tmp_path, text, field):
    path = tmp_path / "run.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as exc:
        load_config(path)
    assert exc.value.field == field


def test_missing_file(tmp_path):
    with pytest.raises(ConfigError) as exc:
        load_config(tmp_path / "absent.toml")
    assert exc.value.field == "<file>"


def test_describe_fields_covers_every_knob():
    info = describe_fields()
    assert set(info) == {
        f"{sec}.{key}" for sec, body in RunConfig().to_dict().items() for key in body
    }
    for name, f in info.items():
        assert f.help, name
        assert f.name == name and name == f"{f.section}.{f.key}"
        json.dumps(f.to_dict())
    assert info["selfplay.group_size"].type == "int"
    assert info["selfplay.group_size"].default == 8
    assert info["rewards.questioner_mode"].choices == ("gaussian", "reverse", "rzero")
    assert info["model.max_positions"].type == "int | None"
    assert describe_fields(preset("cpu-demo"))["selfplay.group_size"].default == 4
    # sections stay grouped, in order
    sections = [f.section for f in info.values()]
    assert sections == sorted(sections, key=sections.index)
