"""TorchScript traces of streaming steps, and the cache that keeps them across sessions.

A streaming step of a few frames is dominated by Python's per-operation overhead; a
trace of the step runs the same operations without it. A :class:`TracedStep` wraps one
step of a model half (its encoder or decoder): the states of the half's streaming blocks
go in and come out as tensors, since a trace only sees tensors that flow through it.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Hashable
from typing import Any

import torch
from torch import Tensor, nn

from codec.nn.streaming import StreamingModule


class TracedStep(nn.Module):
    """One streaming step ``run(*inputs)`` of ``body``, traceable once its blocks are steady."""

    def __init__(self, owner: nn.Module, body: nn.Module, run: Callable[..., Any]) -> None:
        super().__init__()
        self.owner = owner  # registered, so that the trace sees the weights as the owner's
        self.__dict__["run"] = run
        self.__dict__["blocks"] = [m for m in body.modules() if isinstance(m, StreamingModule)]
        self.__dict__["traced"] = None

    def steady(self) -> bool:
        return all(block.is_steady() for block in self.blocks)

    def forward(self, *args: Tensor) -> tuple[Tensor, ...]:
        n = len(self.blocks)
        for block, state in zip(self.blocks, args[len(args) - n:], strict=True):
            block.load_state_tensor(state)
        out = self.run(*args[: len(args) - n])
        out = out if isinstance(out, tuple) else (out,)
        return (*out, *(block.state_tensor() for block in self.blocks))

    def trace(self, *inputs: Tensor) -> None:
        states = tuple(block.state_tensor() for block in self.blocks)
        self.__dict__["traced"] = torch.jit.trace(self, (*inputs, *states), check_trace=False)

    def step(self, *inputs: Tensor) -> tuple[Tensor, ...]:
        """Run the traced step from the blocks' current states and store the next ones."""
        out = self.traced(*inputs, *(block.state_tensor() for block in self.blocks))
        n = len(self.blocks)
        for block, state in zip(self.blocks, out[len(out) - n:], strict=True):
            block.load_state_tensor(state)
        return tuple(out[: len(out) - n])


def trace_steps(steps: dict[str, tuple[TracedStep, tuple[Tensor, ...]]]) -> dict[str, TracedStep]:
    """Trace each ``name: (step, example inputs)`` from its steady state; returns those that traced.

    Each step runs on its inputs until every attention window is full, then once more, so
    that the steady state's attention biases are cached and enter the trace as constants,
    not as computations. A step that cannot be traced (a PyTorch without TorchScript) is
    left out with a warning and runs untraced.
    """
    traced = {}
    for name, (step, inputs) in steps.items():
        for _ in range(1024):
            if step.steady():
                break
            step.run(*inputs)
        else:
            raise RuntimeError(f"the {name} state did not settle; cannot trace it")
        step.run(*inputs)
        with warnings.catch_warnings():
            # Shape checks and input validation become constants of the trace: shapes are
            # fixed per trace, and inputs are validated before a traced step is called.
            warnings.simplefilter("ignore", torch.jit.TracerWarning)
            # PyTorch marks torch.jit deprecated in favour of torch.compile, which needs a C++
            # toolchain and minutes of compilation on a CPU; the trace needs neither.
            warnings.simplefilter("ignore", DeprecationWarning)
            try:
                step.trace(*inputs)
            except Exception as err:
                warnings.warn(f"streaming(trace_frames=...): cannot trace the {name} step "
                              f"({type(err).__name__}: {err}); running it untraced", RuntimeWarning,
                              stacklevel=4)
                continue
        traced[name] = step
    return traced


def made_from(model: nn.Module) -> tuple:
    """What a trace of ``model`` bakes in: every weight (storage and in-place version) and the
    module types (an int8 swap changes them)."""
    # Inference tensors keep no version counter; they cannot change outside inference mode.
    return (tuple((p.data_ptr(), -1 if p.is_inference() else p._version) for p in model.parameters()),
            tuple(type(m) for m in model.modules()))


class TraceCache:
    """Traced steps by shape key (batch, frames, device, dtype), reused while the model they
    were made from stays as it was (:func:`made_from`). Holds a few shapes at most: each
    entry holds a copy of the graphs."""

    def __init__(self, size: int = 4) -> None:
        self.size = size
        self._entries: dict[Hashable, tuple[tuple, dict[str, TracedStep]]] = {}

    def get(self, key: Hashable, model: nn.Module, build: Callable[[], dict[str, TracedStep]]) -> dict[str, TracedStep]:
        """The traces cached under ``key`` for ``model`` as it is now, else ``build()``'s (then cached)."""
        origin = made_from(model)
        cached = self._entries.get(key)
        if cached is not None and cached[0] == origin:
            return cached[1]
        traces = build()
        if len(self._entries) >= self.size:
            self._entries.pop(next(iter(self._entries)))
        self._entries[key] = (origin, traces)
        return traces
