"""CPU int8 inference as a module swap: :func:`swap_int8` replaces every ``nn.Linear`` and
matmul-capable conv (:mod:`codec.nn.conv`) by an int8 twin, or back.

A twin shares its parameters with the module it replaces (same state dict, same weights
hash) and keeps float arithmetic where int8 cannot serve: with autograd on (training)
and off the CPU. At CPU inference the weight is quantized per output channel and the
input per call (``quantized::linear_dynamic``): 4x less weight memory to stream through
the caches. The int8 copy is remade whenever a parameter changes (new storage or an
in-place update), so training between inference calls cannot leave it stale.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from codec.nn.conv import Conv1d, ConvTranspose1d


class _Int8Map:
    """Mixin for a module with ``weight`` / ``bias``: its linear map, in int8 at CPU inference."""

    weight: Tensor
    bias: Tensor | None

    def _int8_linear(self, x: Tensor, make: Callable[[], tuple[Tensor, Tensor | None]]) -> Tensor:
        """``F.linear(x, *make())``; ``make()`` gives the map as ``(weight [N, K], bias [N] or None)``."""
        if torch.is_grad_enabled() or x.device.type != "cpu":
            return F.linear(x, *make())
        # Inference tensors keep no version counter; they cannot change outside inference mode.
        key = tuple((p.data_ptr(), -1 if p.is_inference() else p._version)
                    for p in (self.weight, self.bias) if p is not None)
        state = self.__dict__
        if state.get("_int8_key") != key:
            weight, bias = make()
            weight = weight.detach().float()
            scale = (weight.abs().amax(dim=1) / 127.0).clamp_min(1e-12).double()
            zero = torch.zeros(weight.shape[0], dtype=torch.long)
            q = torch.quantize_per_channel(weight, scale, zero, 0, torch.qint8)
            bias = None if bias is None else bias.detach().float()
            # A plain module attribute: where torch.jit.trace finds it when it traces a streaming step.
            state["_int8_weight"] = torch.ops.quantized.linear_prepack(q, bias)
            state["_int8_key"] = key
        # reduce_range: 7-bit inputs, so that the AVX2 kernels' 16-bit pair sums cannot saturate.
        return torch.ops.quantized.linear_dynamic(x.float(), state["_int8_weight"], True).to(x.dtype)


class Int8Linear(_Int8Map, nn.Linear):
    """``nn.Linear`` with int8 weights at CPU inference."""

    def forward(self, x: Tensor) -> Tensor:
        return self._int8_linear(x, lambda: (self.weight, self.bias))


class Int8Conv1d(_Int8Map, Conv1d):
    """:class:`~codec.nn.conv.Conv1d` whose short-chunk matmul runs in int8 at CPU inference."""

    def matmul(self, cols: Tensor) -> Tensor:
        return self._int8_linear(cols, self.matmul_weight)


class Int8ConvTranspose1d(_Int8Map, ConvTranspose1d):
    """:class:`~codec.nn.conv.ConvTranspose1d` whose short-chunk matmul runs in int8 at CPU inference."""

    def matmul(self, x: Tensor) -> Tensor:
        return self._int8_linear(x, self.matmul_weight)


_INT8_TWIN: dict[type[nn.Module], type[nn.Module]] = {
    nn.Linear: Int8Linear, Conv1d: Int8Conv1d, ConvTranspose1d: Int8ConvTranspose1d,
}
_FLOAT_TWIN = {int8: plain for plain, int8 in _INT8_TWIN.items()}


def _twin(module: nn.Module, cls: type[nn.Module]) -> nn.Module:
    """A ``cls`` holding the very parameters, buffers and settings of ``module``."""
    twin = copy.copy(module)  # shallow: the parameter tensors are shared, not copied
    twin.__class__ = cls
    twin.__dict__.pop("_int8_weight", None)
    twin.__dict__.pop("_int8_key", None)
    return twin


def swap_int8(module: nn.Module, enabled: bool, keep_float: Iterable[nn.Module] = ()) -> None:
    """Swap the linear maps in ``module`` for their int8 twins (``enabled``) or back to float,
    leaving those inside ``keep_float`` as they are."""
    table = _INT8_TWIN if enabled else _FLOAT_TWIN
    kept = {id(m) for root in keep_float for m in root.modules()}
    for parent in list(module.modules()):
        for name, child in list(parent.named_children()):
            cls = table.get(type(child))
            if cls is not None and id(child) not in kept:
                parent._modules[name] = _twin(child, cls)


def is_int8(module: nn.Module) -> bool:
    """Whether ``module`` is an int8 twin made by :func:`swap_int8`."""
    return type(module) in _FLOAT_TWIN
