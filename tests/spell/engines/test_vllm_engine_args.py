"""A vLLM run gets the engine its config describes: engine_arguments maps every engine knob, the
model's dtype and code trust and the run's seed, and the training loop builds its engine from it
(no vLLM needed: the constructor is replaced by a recorder; test_vllm_engine.py runs the real one)."""

from __future__ import annotations

from spell.config import preset, with_overrides
from spell.engines import vllm_engine
from spell.engines.vllm_engine import VLLMEngine, engine_arguments

OVERRIDES = {
    "model.path": "/models/qwen", "model.dtype": "float32", "model.trust_remote_code": True,
    "engine.name": "vllm", "engine.tensor_parallel": 4, "engine.prefix_caching": False, "engine.sleep_mode": True,
    "engine.gpu_memory_utilization": 0.42, "run.seed": 99,
}


def test_every_engine_setting_of_the_config_reaches_the_engine():
    cfg = with_overrides(preset("paper-7b"), OVERRIDES)

    assert engine_arguments(cfg) == {
        "model_path": "/models/qwen", "tensor_parallel": 4, "prefix_caching": False, "sleep_mode": True,
        "gpu_memory_utilization": 0.42, "seed": 99, "dtype": "float32", "max_model_len": None,
        "llm_kwargs": {"trust_remote_code": True},
    }
    assert "llm_kwargs" not in engine_arguments(with_overrides(cfg, {"model.trust_remote_code": False}))


def test_the_training_loop_builds_its_vllm_engine_from_the_config(monkeypatch):
    from spell import train

    seen = {}

    def record(self, model_path, **kwargs):
        seen.update(model_path=model_path, **kwargs)

    monkeypatch.setattr(VLLMEngine, "__init__", record)
    cfg = with_overrides(preset("paper-7b"), OVERRIDES)

    engine = train._make_engine(cfg, model=None, tokenizer=None, device="cuda", trainer=None)

    assert isinstance(engine, vllm_engine.VLLMEngine)
    assert seen == engine_arguments(cfg)
