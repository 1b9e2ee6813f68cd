"""The streaming pattern: one code path for offline calls and chunk-by-chunk streaming.

Every stateful block is a :class:`StreamingModule`: its forward takes a state and
returns the next one. Outside streaming the state is fresh (zeros / empty) for each
call, inside ``streaming()`` it is carried from chunk to chunk. There is one code path,
so a chunked run equals an offline run by construction.
"""

from __future__ import annotations

from typing import Any

from torch import Tensor, nn


class StreamingModule(nn.Module):
    """A module whose output may depend on previous chunks through a state."""

    def __init__(self) -> None:
        super().__init__()
        self._streaming = False
        self._state: Any = None

    def init_state(self, x: Tensor) -> Any:
        """The state before any input (matches the zero left-padding of an offline call)."""
        raise NotImplementedError

    def step(self, x: Tensor, state: Any) -> tuple[Tensor, Any]:
        raise NotImplementedError

    # A traced streaming step (codec.nn.trace) passes the state in and out as one tensor;
    # it is traced once the state has its steady-state structure.
    def is_steady(self) -> bool:
        """Whether the carried state has reached the structure it keeps from now on."""
        return self._state is not None

    def state_tensor(self) -> Tensor:
        """The carried state as one tensor (steady state only)."""
        return self._state

    def load_state_tensor(self, state: Tensor) -> None:
        """Carry ``state`` (from :meth:`state_tensor` of a steady block) into the next step."""
        self.__dict__["_state"] = state

    def forward(self, x: Tensor) -> Tensor:
        state = self._state if self._streaming else None
        if state is None:
            state = self.init_state(x)
        y, state = self.step(x, state)
        if self._streaming:
            # Plain attribute write: nn.Module.__setattr__ checks a state is no parameter,
            # buffer or submodule, a cost paid on every streaming step.
            self.__dict__["_state"] = state
        return y


def set_streaming(module: nn.Module, enabled: bool) -> None:
    """Turn streaming on (fresh states) or off for every streaming block in ``module``."""
    for m in module.modules():
        if isinstance(m, StreamingModule):
            m._streaming = enabled
            m._state = None
