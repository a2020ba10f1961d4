"""Runs inside each vLLM worker process: receives the policy's new weights and loads them.

vLLM instantiates this class as a mixin of its worker (`LLM(worker_extension_cls=...)`), so
`self.model_runner` is the worker's model runner. The engine calls the methods through
`LLM.collective_rpc(name, args=...)`, which reaches every worker (every tensor-parallel rank
loads its own shard from the full tensors).

Why the shapes below:
- Weights travel as safetensors *bytes*: torch tensors sent through collective_rpc arrive as
  nested lists (msgpack), bytes arrive intact.
- A large model is sent in several chunks (`spell_stage_weights`), then loaded in one go
  (`spell_commit_weights`), so one RPC message never holds the whole model.
- Loading goes through `model_runner.reload_weights(weights_iterator=...)`, not
  `model.load_weights(...)`: on CPU vLLM repacks linear weights after loading, and a plain
  `load_weights` after start fails ("into parameter torch.Size([0])"); `reload_weights` redoes
  the post-load processing.
- Method names carry a `spell_` prefix: `update_weights` is taken by vLLM's own weight-transfer
  API, and a clash stops the engine from starting.

This module must not import vLLM at import time (the main env imports the package without it).
"""

from __future__ import annotations

import time
from typing import Any


class SpellWorkerExtension:
    """Mixin for vLLM workers: `spell_*` methods called by `VLLMEngine` via collective_rpc."""

    def _spell_staged(self) -> list[bytes]:
        staged = getattr(self, "_spell_staged_blobs", None)
        if staged is None:
            staged = []
            self._spell_staged_blobs = staged
        return staged

    def spell_stage_weights(self, blob: bytes) -> int:
        """Keep one safetensors chunk until `spell_commit_weights`; returns bytes staged so far."""
        staged = self._spell_staged()
        staged.append(bytes(blob))
        return sum(len(b) for b in staged)

    def spell_stage_weights_file(self, path: str) -> int:
        """Stage a safetensors file written by the engine on this host (the "file" transport:
        skips pushing the bytes through the RPC queues)."""
        with open(path, "rb") as f:
            return self.spell_stage_weights(f.read())

    def spell_discard_weights(self) -> None:
        self._spell_staged_blobs = []

    def spell_commit_weights(self) -> dict[str, Any]:
        """Load every staged chunk into the model; returns counts and seconds."""
        from safetensors.torch import load

        start = time.perf_counter()
        blobs = self._spell_staged()
        self._spell_staged_blobs = []
        tensors: dict[str, Any] = {}
        for blob in blobs:
            tensors.update(load(blob))
        n = len(tensors)
        numel = sum(int(t.numel()) for t in tensors.values())
        self._spell_reload(iter(tensors.items()))
        return {"tensors": n, "numel": numel, "seconds": time.perf_counter() - start}

    def spell_load_weights(self, blob: bytes) -> dict[str, Any]:
        """Load one safetensors blob holding the whole state dict (small models)."""
        self.spell_discard_weights()
        self.spell_stage_weights(blob)
        return self.spell_commit_weights()

    def spell_weight_checksum(self, names: list[str] | None = None) -> dict[str, float]:
        """Sum of each named parameter as the worker holds it (a cheap test hook)."""
        model = self.model_runner.model
        out: dict[str, float] = {}
        for name, param in model.named_parameters():
            if names is None or name in names:
                out[name] = float(param.detach().float().sum())
        return out

    def _spell_reload(self, weights) -> None:
        import inspect

        runner = self.model_runner
        reload = getattr(runner, "reload_weights", None)
        if reload is not None and "weights_iterator" in inspect.signature(reload).parameters:
            reload(weights_iterator=weights)
            return
        # Older vLLM (reload_weights() re-reads the checkpoint, no iterator): GPU builds keep
        # weights in their loaded layout, so a plain load_weights works there.
        runner.model.load_weights(weights=weights)
