"""The plain-torch trainer: AdamW on one device, fp32 on CPU (or whatever dtype the model has)."""

from __future__ import annotations

import copy
from typing import Any

import torch

from spell.trainers.base import LossFn, PolicyTrainer, TrainerSettings


class TorchTrainer(PolicyTrainer):
    def __init__(
        self, model: Any, loss_fn: LossFn, settings: TrainerSettings | None = None, device: str | torch.device = "cpu"
    ) -> None:
        settings = settings or TrainerSettings()
        super().__init__(model, loss_fn, settings, device)
        self._model = model.to(self.device)
        self.optimizer = torch.optim.AdamW(
            [p for p in model.parameters() if p.requires_grad],
            lr=settings.lr,
            betas=settings.betas,
            eps=settings.eps,
            weight_decay=settings.weight_decay,
        )

    @property
    def model(self) -> Any:
        return self._model

    def _backward(self, loss: torch.Tensor, is_last: bool) -> None:
        loss.backward()

    def _optimizer_step(self) -> float:
        params = [p for p in self._model.parameters() if p.grad is not None]
        # max_norm=inf measures the norm without clipping when clipping is off.
        max_norm = self.settings.grad_clip if self.settings.grad_clip > 0 else float("inf")
        grad_norm = torch.nn.utils.clip_grad_norm_(params, max_norm)
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        return float(grad_norm)

    def set_learning_rate(self, lr: float) -> None:
        for group in self.optimizer.param_groups:
            group["lr"] = lr

    def state_dict(self) -> dict[str, Any]:
        return {
            "model": self._model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "steps_done": self.steps_done,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if "model" in state:
            self._model.load_state_dict(state["model"])
        # torch keeps the given state tensors when dtype and device already match: copy them, or
        # the source trainer's next step would change this one's moments too.
        self.optimizer.load_state_dict(copy.deepcopy(state["optimizer"]))
        self.steps_done = int(state.get("steps_done", 0))
