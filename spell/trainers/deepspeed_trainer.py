"""The DeepSpeed trainer: ZeRO stages 0-3, same interface as the torch trainer.

On GPUs it trains in bf16 with NCCL (started by the `deepspeed` launcher, one process per GPU).
On CPU it trains in fp32 over gloo, and a single process without a launcher works: the
distributed environment variables get single-process defaults.

DeepSpeed compiles C++ ops the first time they are used (~1-2 min each). The optimizer is
torch's AdamW handed to DeepSpeed as a client optimizer, so nothing is compiled unless
`use_deepspeed_optimizer=True`; compiled ops go to ~/.cache/spell-studio/torch_extensions.
"""

from __future__ import annotations

import contextlib
import os
import socket
from pathlib import Path
from typing import Any, ContextManager

import torch

from spell.models import cache_root
from spell.trainers.base import LossFn, PolicyTrainer, TrainerSettings


_SHM_COMM_OP = "deepspeed_shm_comm"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def prepare_single_process_env() -> None:
    """Defaults for torch.distributed when no launcher set them (a plain `python -m spell`)."""
    os.environ.setdefault("TORCH_EXTENSIONS_DIR", str(cache_root() / "torch_extensions"))
    os.environ.setdefault("MASTER_ADDR", "127.0.0.1")
    os.environ.setdefault("MASTER_PORT", str(_free_port()))
    os.environ.setdefault("RANK", "0")
    os.environ.setdefault("LOCAL_RANK", "0")
    os.environ.setdefault("WORLD_SIZE", "1")
    os.environ.setdefault("LOCAL_WORLD_SIZE", "1")


def deepspeed_config(settings: TrainerSettings, on_gpu: bool, use_deepspeed_optimizer: bool) -> dict[str, Any]:
    config: dict[str, Any] = {
        # One packed micro-batch per forward; accumulation is driven by train_step, which marks
        # the accumulation boundary itself (micro-batch counts vary from step to step).
        "train_micro_batch_size_per_gpu": 1,
        "gradient_accumulation_steps": 1,
        "gradient_clipping": settings.grad_clip,
        "zero_optimization": {"stage": settings.zero_stage},
        "bf16": {"enabled": on_gpu},
        # torch's AdamW is not in DeepSpeed's tested list; it works with every ZeRO stage.
        "zero_allow_untested_optimizer": True,
        "steps_per_print": 1 << 30,
        "wall_clock_breakdown": False,
    }
    if use_deepspeed_optimizer:
        config["optimizer"] = {
            "type": "AdamW",
            "params": {
                "lr": settings.lr,
                "betas": list(settings.betas),
                "eps": settings.eps,
                "weight_decay": settings.weight_decay,
            },
        }
    return config


class DeepSpeedTrainer(PolicyTrainer):
    def __init__(
        self,
        model: Any,
        loss_fn: LossFn,
        settings: TrainerSettings | None = None,
        device: str | torch.device | None = None,
        use_deepspeed_optimizer: bool = False,
    ) -> None:
        settings = settings or TrainerSettings()
        on_gpu = torch.cuda.is_available() if device is None else torch.device(device).type == "cuda"
        device = device or ("cuda" if on_gpu else "cpu")
        if not 0 <= settings.zero_stage <= 3:
            raise ValueError(f"ZeRO stage must be 0-3, got {settings.zero_stage}")
        super().__init__(model, loss_fn, settings, device)
        prepare_single_process_env()
        import deepspeed  # late: importing it probes the accelerator and prints

        if not on_gpu:
            # DeepSpeed's CPU backend compiles a shared-memory all-reduce op on first use (~1 min,
            # and a compiler). Only its inference all-reduce uses it; training collectives go
            # through torch.distributed (gloo) either way, so mark the op unavailable instead.
            deepspeed.ops.__compatible_ops__[_SHM_COMM_OP] = False
        if not torch.distributed.is_initialized():
            deepspeed.init_distributed(dist_backend="nccl" if on_gpu else "gloo")
        optimizer = None
        if not use_deepspeed_optimizer:
            optimizer = torch.optim.AdamW(
                [p for p in model.parameters() if p.requires_grad],
                lr=settings.lr,
                betas=settings.betas,
                eps=settings.eps,
                weight_decay=settings.weight_decay,
            )
        self.engine, self.optimizer, _, _ = deepspeed.initialize(
            model=model,
            optimizer=optimizer,
            model_parameters=[p for p in model.parameters() if p.requires_grad],
            config=deepspeed_config(settings, on_gpu, use_deepspeed_optimizer),
        )
        self.device = self.engine.device

    # The engine averages the data-parallel ranks' gradients (spell/trainers/base.py scales).
    averages_gradients = True

    @property
    def model(self) -> Any:
        return self.engine.module

    def engine_state_dict(self) -> dict[str, torch.Tensor]:
        if self.settings.zero_stage != 3:
            return super().engine_state_dict()
        with self.whole_weights():  # copied out: the gathered tensors are freed on exit
            return {name: tensor.detach().clone() for name, tensor in self.engine.module.state_dict().items()}

    def whole_weights(self) -> ContextManager[Any]:
        # ZeRO-3: each rank holds a shard; gather them all (read-only: nothing is scattered back).
        if self.settings.zero_stage != 3:
            return contextlib.nullcontext()
        import deepspeed

        return deepspeed.zero.GatheredParameters(list(self.engine.module.parameters()), modifier_rank=None)

    def generation_context(self) -> ContextManager[Any]:
        # ZeRO-3 keeps each rank's shard only and its hooks gather a layer's weights for every
        # forward: a decoded token would gather the whole model once. Gather it once for the
        # whole generate call instead, with the hooks off (DeepSpeed's own recipe, as TRL uses).
        if self.settings.zero_stage != 3:
            return contextlib.nullcontext()
        return self._zero3_generation()

    @contextlib.contextmanager
    def _zero3_generation(self):
        """DeepSpeed's unwrap_model_for_generation, and the model's own start-of-forward hook
        off as well: that hook (reset_step) checks that the ranks' module orders agree, a
        broadcast in every forward, so ranks decoding different numbers of tokens would wait on
        each other for ever (seen with 2 gloo ranks). Back on when the generation ends."""
        from deepspeed.runtime.zero.stage3 import unwrap_model_for_generation

        offload = getattr(self.engine.optimizer, "parameter_offload", self.engine.optimizer)
        handle = getattr(offload, "fwd_pre_hook", None)
        module = self.engine.module
        hook = module._forward_pre_hooks.get(handle.id) if handle is not None else None
        with unwrap_model_for_generation(self.engine):
            if hook is not None:
                handle.remove()
            try:
                yield
            finally:
                if hook is not None:
                    offload.fwd_pre_hook = module.register_forward_pre_hook(hook)

    def _backward(self, loss: torch.Tensor, is_last: bool) -> None:
        # Only the last micro-batch is an accumulation boundary (reduce + optimizer step).
        self.engine.set_gradient_accumulation_boundary(is_last)
        self.engine.backward(loss, scale_wrt_gas=False)

    def _optimizer_step(self) -> float:
        # ZeRO-1/2/3 report the norm they clip with; stage 0 with a client optimizer does not,
        # so measure it from the (unpartitioned) .grad tensors first.
        stage0_norm = self._stage0_grad_norm() if self.settings.zero_stage == 0 else None
        self.engine.set_gradient_accumulation_boundary(True)
        self.engine.step()
        norm = self.engine.get_global_grad_norm()
        if norm is None:
            norm = stage0_norm
        return float(norm) if norm is not None else float("nan")

    def _stage0_grad_norm(self) -> float:
        grads = [p.grad.detach().float() for p in self.engine.module.parameters() if p.grad is not None]
        if not grads:
            return 0.0
        return float(torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g) for g in grads])))

    def set_learning_rate(self, lr: float) -> None:
        for group in self.engine.optimizer.param_groups:
            group["lr"] = lr

    def full_state_dict(self) -> dict[str, torch.Tensor]:
        """The whole model's weights (gathered from the ZeRO-3 partitions if needed)."""
        if self.settings.zero_stage == 3:
            return self.engine._zero3_consolidated_16bit_state_dict()
        return self.engine.module.state_dict()

    def state_dict(self) -> dict[str, Any]:
        return {
            "model": self.full_state_dict(),
            "optimizer": self.engine.optimizer.state_dict(),
            "steps_done": self.steps_done,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """In-memory restore for ZeRO 0-2 (one process). ZeRO-3 partitions the weights, so use
        save_optimizer / load_optimizer (DeepSpeed's own checkpoint files) there."""
        stage = self.settings.zero_stage
        if stage == 3:
            raise NotImplementedError("ZeRO-3: restore with load_optimizer(folder), not load_state_dict")
        if "model" in state:
            self.engine.module.load_state_dict(state["model"])
        if stage == 0:
            self.engine.optimizer.load_state_dict(state["optimizer"])
        else:
            # ZeRO-1/2 keep fp32 master partitions: load the optimizer state, then copy the
            # module's (just loaded) weights into the master partitions.
            self.engine.optimizer.load_state_dict([state["optimizer"]], load_from_fp32_weights=False)
            self.engine.optimizer.refresh_fp32_params()
        self.steps_done = int(state.get("steps_done", 0))

    def save_optimizer(self, folder: Path) -> None:
        """DeepSpeed's own checkpoint (works for every ZeRO stage and several processes)."""
        self.engine.save_checkpoint(str(folder / "deepspeed"), tag="state", client_state={"steps_done": self.steps_done})

    def load_optimizer(self, folder: Path) -> None:
        path, client_state = self.engine.load_checkpoint(str(folder / "deepspeed"), tag="state")
        if path is None:
            raise FileNotFoundError(f"no DeepSpeed state under {folder / 'deepspeed'}")
        self.steps_done = int((client_state or {}).get("steps_done", self.steps_done))
