import json

import pytest

from spell.config import (
    TASKS,
    ConfigError,
    RunConfig,
    describe_fields,
    load_config,
    preset,
    role_max_tokens,
    validate,
    with_overrides,
)


def fields_of(errors):
    return {e.field for e in errors}


# The full resolved config of each preset, by hand: any change to a default or to a preset's
# overrides shows up here (and belongs in docs/fidelity.md for paper-7b).
PAPER_7B = {
    "model": {"path": "var/models/Qwen2.5-7B-Instruct", "max_positions": None, "dtype": "bfloat16",
              "trust_remote_code": False, "gradient_checkpointing": True},
    "tasks": {"mix": {"doc_general_qa": 1.0, "doc_mc": 1.0, "docmath_qa": 1.0}, "docs_per_question": 5},
    "selfplay": {"questions_per_task": 160, "group_size": 8, "verifier_samples": 8, "batch_groups": 128,
                 "max_generation_batches": 10, "verifier_share": 0.125, "verifier_batch": "fixed",
                 "bad_questioner_ratio": 1.0, "qa_answer_max_tokens": 40, "grounding_threshold": 0.1,
                 "grounding_enabled": True, "verifier_enabled": True, "verifier_model": "",
                 "train_questioner": True, "mode": "spell", "rlvr_set": "", "train_without_varied_groups": False,
                 "verifier_tasks": ["doc_general_qa", "doc_mc", "docmath_qa"], "question_quality_filter": False},
    "rewards": {"questioner_mode": "gaussian", "sigma": 1 / 6, "verifier_eligibility": "maj_cons",
                "majority": "paper", "agreement_min": 0.51, "agreement_max": 0.99,
                "ungrounded_penalty": -0.5, "format_penalty": -1.0},
    "memory": {"enabled": True, "depth": 3, "admission": "paper", "new_docs_per_round": 5, "overflow": "skip"},
    "length_curriculum": {"enabled": False, "stages": [4096, 8192, 16384], "promote_accuracy": 0.6, "window": 5},
    "sampling": {"temperature": 0.7, "top_p": 0.95, "max_response_tokens": 4096, "max_prompt_tokens": 18000,
                 "questioner_max_tokens": 0, "responder_max_tokens": 0, "verifier_max_tokens": 0},
    "prompts": {"style": "release", "strict_record": True},
    "structured": {"questioner": False, "verifier": False, "responder": False, "grounded": False,
                   "cloze_questions": False},
    "optim": {"lr": 2e-06, "weight_decay": 0.01, "grad_clip": 1.0, "betas": [0.9, 0.999], "eps": 1e-08,
              "schedule": "constant", "warmup_steps": 0},
    "loss": {"clip": 0.2, "aggregation": "token-mean", "per_role_mean": False, "advantage_std": "unbiased",
             "dual_clip": 3.0, "kl_coef": 0.0, "kl_estimator": "k3", "entropy_coef": 0.0},
    "trainer": {"backend": "deepspeed", "zero_stage": 3, "device": "cuda", "num_gpus": 8,
                "micro_batch_tokens": 32768, "logprob_chunk_tokens": 1024, "share_prefix": True},
    "engine": {"name": "vllm", "tensor_parallel": 1, "prefix_caching": True, "sleep_mode": False,
               "gpu_memory_utilization": 0.6},
    "warmup": {"enabled": False, "examples_per_role": 32, "verifier_examples": 32, "epochs": 1, "batch_sequences": 8, "lr": 5e-05},
    "eval": {"every_steps": 10, "sets": [], "samples": 8, "max_input_tokens": 16384, "at_start": True,
             "judge": False, "judge_model_path": ""},
    "checkpoint": {"every_steps": 10, "keep_last": 2, "keep_best": True},
    "run": {"steps": 70, "time_budget_minutes": 0.0, "seed": 1234, "report_to": []},
}

CPU_DEMO = {
    "model": {"path": "var/models/SmolLM2-135M-Instruct", "max_positions": None, "dtype": "float32",
              "trust_remote_code": False, "gradient_checkpointing": False},
    "tasks": {"mix": {"doc_general_qa": 1.0, "doc_mc": 1.0, "docmath_qa": 1.0}, "docs_per_question": 2},
    "selfplay": {"questions_per_task": 3, "group_size": 4, "verifier_samples": 4, "batch_groups": 9,
                 "max_generation_batches": 1, "verifier_share": 0.5, "verifier_batch": "share",
                 "bad_questioner_ratio": 1.0, "qa_answer_max_tokens": 40, "grounding_threshold": 0.1,
                 "grounding_enabled": True, "verifier_enabled": True, "verifier_model": "",
                 "train_questioner": True, "mode": "spell", "rlvr_set": "", "train_without_varied_groups": True,
                 "verifier_tasks": ["doc_general_qa"], "question_quality_filter": True},
    "rewards": {"questioner_mode": "gaussian", "sigma": 1 / 6, "verifier_eligibility": "maj_cons",
                "majority": "paper", "agreement_min": 0.51, "agreement_max": 0.99,
                "ungrounded_penalty": -0.5, "format_penalty": -1.0},
    "memory": {"enabled": True, "depth": 3, "admission": "paper", "new_docs_per_round": 1, "overflow": "fit"},
    "length_curriculum": {"enabled": False, "stages": [4096, 8192, 16384], "promote_accuracy": 0.6, "window": 5},
    "sampling": {"temperature": 0.7, "top_p": 0.95, "max_response_tokens": 160, "max_prompt_tokens": 2048,
                 "questioner_max_tokens": 112, "responder_max_tokens": 32, "verifier_max_tokens": 4},
    "prompts": {"style": "small", "strict_record": False},
    "structured": {"questioner": True, "verifier": True, "responder": True, "grounded": True, "cloze_questions": True},
    "optim": {"lr": 1e-05, "weight_decay": 0.01, "grad_clip": 1.0, "betas": [0.9, 0.999], "eps": 1e-08,
              "schedule": "constant", "warmup_steps": 0},
    "loss": {"clip": 0.2, "aggregation": "token-mean", "per_role_mean": True, "advantage_std": "population",
             "dual_clip": 3.0, "kl_coef": 0.0, "kl_estimator": "k3", "entropy_coef": 0.0},
    "trainer": {"backend": "torch", "zero_stage": 0, "device": "cpu", "num_gpus": 0,
                "micro_batch_tokens": 8192, "logprob_chunk_tokens": 512, "share_prefix": True},
    "engine": {"name": "hf", "tensor_parallel": 1, "prefix_caching": True, "sleep_mode": False,
               "gpu_memory_utilization": 0.6},
    "warmup": {"enabled": True, "examples_per_role": 32, "verifier_examples": 512, "epochs": 1, "batch_sequences": 8, "lr": 5e-05},
    "eval": {"every_steps": 5, "sets": [], "samples": 2, "max_input_tokens": 2048, "at_start": True,
             "judge": False, "judge_model_path": ""},
    "checkpoint": {"every_steps": 5, "keep_last": 2, "keep_best": True},
    "run": {"steps": 20, "time_budget_minutes": 0.0, "seed": 1234, "report_to": []},
}


@pytest.mark.parametrize("name, expected", [("paper-7b", PAPER_7B), ("cpu-demo", CPU_DEMO)])
def test_each_preset_resolves_to_exactly_this_config(name, expected):
    assert preset(name).to_dict() == expected
    # same keys in the same section order (the web form renders them in this order)
    assert list(preset(name).to_dict()) == list(expected)


def test_defaults_are_the_papers_setting():
    cfg = RunConfig()
    assert cfg == preset("paper-7b")
    assert validate(cfg) == []
    # 16K context needs a model with ~22K positions: 18,000 prompt + 4,096 response.
    assert validate(cfg, model_max_positions=32768) == []
    assert validate(cfg, model_max_positions=22096) == []
    assert "sampling.max_prompt_tokens" in fields_of(validate(cfg, model_max_positions=22095))


def test_cpu_demo_fits_smollm2():
    cfg = preset("cpu-demo")
    assert validate(cfg, model_max_positions=8192) == []
    assert cfg.structured.questioner and cfg.structured.verifier
    assert cfg.structured.responder and cfg.structured.grounded and cfg.prompts.style == "small"
    # no length stages: the context is the prompt limit, short enough for SmolLM2 to read
    assert not cfg.length_curriculum.enabled and cfg.sampling.max_prompt_tokens <= 2048
    # the release's fixed verifier count would be int(9 x 4 x 0.125 / 4) = 1 group here
    assert int(cfg.selfplay.batch_groups * cfg.selfplay.group_size * 0.125 / cfg.selfplay.verifier_samples) == 1
    assert cfg.selfplay.verifier_batch == "share"


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
        ({"length_curriculum.enabled": True, "length_curriculum.stages": [99999]}, "length_curriculum.stages"),
        ({"selfplay.verifier_batch": "all"}, "selfplay.verifier_batch"),
        ({"prompts.style": "poetic"}, "prompts.style"),
        ({"loss.advantage_std": "biased"}, "loss.advantage_std"),
        ({"loss.dual_clip": 0.5}, "loss.dual_clip"),
        ({"loss.dual_clip": 1.0}, "loss.dual_clip"),
        ({"selfplay.mode": "sft"}, "selfplay.mode"),
        ({"selfplay.mode": "rlvr"}, "selfplay.rlvr_set"),
        ({"selfplay.verifier_model": "var/models/judge", "selfplay.verifier_enabled": False}, "selfplay.verifier_model"),
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


def test_the_rlvr_baseline_refuses_an_evaluation_set_as_training_data(tmp_path):
    qa = tmp_path / "hotpotqa.jsonl"
    ok = with_overrides(RunConfig(), {"selfplay.mode": "rlvr", "selfplay.rlvr_set": str(qa),
                                      "eval.sets": [str(tmp_path / "musique.jsonl")]})
    assert validate(ok) == []
    # the same file, also when named another way
    for same in (str(qa), str(tmp_path / "x" / ".." / "hotpotqa.jsonl")):
        cfg = with_overrides(ok, {"eval.sets": [str(tmp_path / "musique.jsonl"), same]})
        errors = [e for e in validate(cfg) if e.field == "selfplay.rlvr_set"]
        assert errors and "is one of eval.sets" in errors[0].reason


def test_the_stages_need_not_fit_the_prompt_when_the_curriculum_is_off():
    cfg = with_overrides(RunConfig(), {"length_curriculum.stages": [99999]})
    assert validate(cfg) == []


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


def test_each_role_has_its_own_completion_limit_under_the_common_ceiling():
    cfg = with_overrides(RunConfig(), {"sampling.max_response_tokens": 100, "sampling.questioner_max_tokens": 60,
                                       "sampling.verifier_max_tokens": 400})
    assert role_max_tokens(cfg, "questioner") == 60
    assert role_max_tokens(cfg, "responder") == 100  # 0: the ceiling
    assert role_max_tokens(cfg, "verifier") == 100  # never above the ceiling
    assert "sampling.responder_max_tokens" in fields_of(validate(with_overrides(cfg, {"sampling.responder_max_tokens": -1})))
    bad = with_overrides(RunConfig(), {"selfplay.verifier_tasks": ["doc_qa"]})
    assert "selfplay.verifier_tasks" in fields_of(validate(bad))
    assert "structured.grounded" in fields_of(validate(with_overrides(RunConfig(), {"structured.grounded": True})))
    assert "run.steps" in fields_of(validate(with_overrides(RunConfig(), {"run.steps": 0})))
    # a knob whose feature does not exist yet is refused, not silently ignored
    assert "eval.judge" in fields_of(validate(with_overrides(RunConfig(), {"eval.judge": True})))


def test_every_declared_bound_is_enforced_by_validate():
    from spell.config import describe_fields, validate, with_overrides

    base = preset("cpu-demo")
    bounded = {n: i for n, i in describe_fields(base).items() if i.minimum is not None or i.maximum is not None}
    assert {"run.steps", "selfplay.group_size", "sampling.temperature", "trainer.zero_stage"} <= set(bounded)
    for name, info in bounded.items():
        is_int = info.type.startswith("int")
        outside = []
        if info.minimum is not None:
            outside.append(info.minimum if info.min_open else info.minimum - (1 if is_int else 0.5))
        if info.maximum is not None:
            outside.append(info.maximum + (1 if is_int else 0.5))
        for value in outside:
            errors = validate(with_overrides(base, {name: int(value) if is_int else value}))
            assert name in [e.field for e in errors], (name, value)


def test_an_integer_too_large_for_a_float_is_checked_against_its_bounds_not_crashed_on():
    from spell.config import validate, with_overrides

    huge = 10**400  # what a form's "9" * 400 parses to; float(huge) raises OverflowError
    assert validate(with_overrides(preset("cpu-demo"), {"warmup.epochs": huge})) == []
    errors = validate(with_overrides(preset("cpu-demo"), {"run.steps": -huge}))
    assert [e.field for e in errors] == ["run.steps"]


def test_a_zero_step_run_is_refused():
    from spell.config import validate, with_overrides

    errors = validate(with_overrides(preset("cpu-demo"), {"run.steps": 0}))
    assert [(e.field, e.reason) for e in errors] == [("run.steps", "must be >= 1 (got 0)")]
