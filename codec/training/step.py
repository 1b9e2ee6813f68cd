"""What a model provides to be trained (:class:`TrainingTask`) and its handle on optimization
during a step (:class:`StepRunner`)."""

from __future__ import annotations

import contextlib
import math
import random
from abc import ABC, abstractmethod
from collections.abc import Iterable
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn
from torch.utils.data import default_collate

from codec.training.distributed import DistContext


def seed_everything(seed: int) -> None:
    """Seed python, numpy and torch (all devices) generators."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


class NonFiniteLoss(RuntimeError):
    """A loss (or, without a grad scaler, a gradient norm) was NaN/Inf on some rank.

    Raised by ``StepRunner.step`` on every rank at once; the trainer skips the rest of the
    train step. Optimizers already stepped earlier in the same train step keep their update.
    """

    def __init__(self, optimizer: str, what: str, value: float) -> None:
        super().__init__(f"non-finite {what} for optimizer {optimizer!r} ({value})")
        self.optimizer, self.what, self.value = optimizer, what, value


class TrainingDiverged(RuntimeError):
    """Too many consecutive train steps had non-finite losses."""


class TrainingTask(ABC):
    """What a model must provide to be trained by :class:`Trainer`.

    Datasets are map-style and indexed by keys ``(item_index, item_seed)``; an item's
    random choices must come from ``item_seed`` only (e.g. ``torch.Generator().manual_seed``),
    which makes the data order resumable and independent of ``num_workers``. Modules that
    must not be trained or checkpointed (a frozen teacher) stay out of ``modules()``.
    """

    @abstractmethod
    def modules(self) -> dict[str, nn.Module]:
        """Modules to train and checkpoint, by name (names become file names)."""

    @abstractmethod
    def param_groups(self) -> dict[str, list[nn.Parameter]]:
        """Parameters of each optimizer, by optimizer name (e.g. ``gen``, ``disc``)."""

    @abstractmethod
    def train_dataset(self) -> Any:
        """Map-style dataset: ``len()`` and ``[(item_index, item_seed)]``."""

    def valid_dataset(self) -> Any | None:
        """Validation dataset with the same key convention, or None."""
        return None

    def collate(self, items: list[Any]) -> Any:
        """Turn a list of dataset items into a batch (tensors are moved to the device)."""
        return default_collate(items)

    @abstractmethod
    def train_step(self, batch: Any, step: int, opt: StepRunner) -> dict[str, float]:
        """One training step at 0-based ``step``.

        Run the forward through ``opt.module(name)`` (the DistributedDataParallel wrapper
        when distributed, so gradients are synchronised), call ``opt.step(name, loss)``
        once per optimizer, in order (e.g. ``disc`` then ``gen``), and return scalars to log.
        """

    def validate(self, batches: Iterable[Any], step: int) -> dict[str, float]:
        """Metrics averaged over ``batches`` (already on the device; modules in eval mode,
        gradients off). Use the task's own modules here, not the distributed wrappers."""
        raise NotImplementedError(f"{type(self).__name__} has a validation set but no validate()")

    def module_configs(self) -> dict[str, dict[str, Any]]:
        """JSON configs written beside the weights of the named modules in each checkpoint
        (``<name>.json``), so that a checkpoint's models load without the training recipe."""
        return {}

    def log_samples(self, writer: Any, batch: Any, step: int) -> None:  # noqa: B027 (optional hook)
        """Optionally add examples (e.g. ``writer.add_audio``) for the first validation batch."""


class StepRunner:
    """The task's handle on optimization during ``train_step``."""

    def __init__(
        self,
        modules: dict[str, nn.Module],
        optimizers: dict[str, torch.optim.Optimizer],
        params: dict[str, list[nn.Parameter]],
        grad_clip: dict[str, float],
        scalers: dict[str, torch.amp.GradScaler],
        dist_ctx: DistContext,
        amp: bool,
    ) -> None:
        self._modules, self._optimizers, self._params = modules, optimizers, params
        self._clip, self._scalers, self._dist, self._amp = grad_clip, scalers, dist_ctx, amp
        self.stats: dict[str, float] = {}  # grad norms of the current step, logged with its scalars

    def module(self, name: str) -> nn.Module:
        """The module to run forwards through (DDP-wrapped when distributed)."""
        if name not in self._modules:
            raise KeyError(
                f"no module {name!r}; the task's modules are: {', '.join(self._modules)}"
            )
        return self._modules[name]

    def lr(self, name: str) -> float:
        """Current learning rate of optimizer ``name``."""
        return self._optimizers[name].param_groups[0]["lr"]

    def zero_grad(self) -> None:
        for opt in self._optimizers.values():
            opt.zero_grad(set_to_none=True)

    def step(self, name: str, loss: Tensor) -> float:
        """Backward ``loss``, clip and apply optimizer ``name``; returns the gradient norm.

        Gradients of this optimizer's parameters are cleared before the backward, so
        gradients left by an earlier loss of the same step (e.g. the discriminator's
        from the generator's adversarial loss) never leak into its update. Raises
        ``NonFiniteLoss`` (on all ranks together) if the loss is NaN/Inf.
        """
        if name not in self._optimizers:
            raise KeyError(
                f"no optimizer {name!r}; param_groups() declared: {', '.join(self._optimizers)}"
            )
        if not isinstance(loss, Tensor) or loss.numel() != 1 or not loss.requires_grad:
            raise ValueError(f"opt.step({name!r}, loss) needs a scalar tensor that requires grad")
        if not self._dist.all_true(bool(torch.isfinite(loss.detach()).item())):
            self.zero_grad()
            raise NonFiniteLoss(name, "loss", float(loss.detach()))
        opt, params = self._optimizers[name], self._params[name]
        scaler = self._scalers.get(name)
        opt.zero_grad(set_to_none=True)
        # Backward outside autocast: it reuses the forward's dtypes anyway.
        with torch.autocast("cuda", enabled=False) if self._amp else contextlib.nullcontext():
            (scaler.scale(loss) if scaler is not None else loss).backward()
        grads = [p.grad for p in params if p.grad is not None]
        if not grads:
            raise RuntimeError(
                f"the loss given to optimizer {name!r} has no gradient for its parameters"
            )
        if scaler is not None:
            scaler.unscale_(opt)
        norm = torch.nn.utils.get_total_norm(grads)
        if self._clip[name] > 0:
            torch.nn.utils.clip_grads_with_norm_(params, self._clip[name], norm)
        norm_value = float(norm)
        if scaler is not None:
            # The scaler skips the update itself on inf/NaN gradients (normal while it
            # calibrates); only a non-finite loss counts as a bad step.
            scaler.step(opt)
            scaler.update()
        elif not math.isfinite(norm_value):
            self.zero_grad()
            raise NonFiniteLoss(name, "gradient norm", norm_value)
        else:
            opt.step()
        opt.zero_grad(set_to_none=True)
        self.stats[f"grad_norm/{name}"] = norm_value
        return norm_value
