"""ODE sampler for flow-matching heads, kept apart from the network (any velocity field works).

Shapes: ``x`` ``[N, D]``, ``t`` ``[N]``, condition ``h`` ``[N, H]``. Integrates from
``t = 0`` (noise) to ``t = 1`` (data).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor

from .config import SCHEDULES, SOLVERS

VelocityFn = Callable[[Tensor, Tensor, Tensor], Tensor]  # (x [N, D], t [N], h [N, H]) -> v [N, D]


def time_grid(steps: int, schedule: str = "linear", device: torch.device | str | None = None) -> Tensor:
    """``[steps + 1]`` increasing times from exactly 0 to exactly 1."""
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    u = torch.linspace(0.0, 1.0, steps + 1, device=device)
    if schedule == "linear":
        return u
    if schedule == "cosine":
        # Small steps where the path leaves the noise, where the field bends most.
        t = 1.0 - torch.cos(0.5 * math.pi * u)
        t[-1] = 1.0
        return t
    raise ValueError(f"schedule must be one of {SCHEDULES}, got {schedule!r}")


def guided_velocity(fn: VelocityFn, x: Tensor, t: Tensor, h: Tensor, alpha: float) -> Tensor:
    """Classifier-free guidance: ``v_uncond + alpha * (v_cond - v_uncond)``, with ``h = 0`` unconditional.

    Both branches go through ``fn`` as one batch of ``2N``; ``alpha == 1`` is the
    conditional velocity and skips the unconditional branch.
    """
    if alpha == 1.0:
        return fn(x, t, h)
    n = x.shape[0]
    v = fn(torch.cat([x, x]), torch.cat([t, t]), torch.cat([h, torch.zeros_like(h)]))
    v_cond, v_uncond = v[:n], v[n:]
    return v_uncond + alpha * (v_cond - v_uncond)


class FlowSampler:
    """Integrates a conditional velocity field from noise to data.

    Args:
        steps: solver steps (Euler: one velocity evaluation each, midpoint: two).
        cfg: guidance strength alpha (1.0 = plain conditional field).
        solver: ``"euler"`` or ``"midpoint"``.
        schedule: time grid, ``"linear"`` or ``"cosine"``.
    """

    def __init__(self, steps: int = 8, cfg: float = 1.2, solver: str = "euler", schedule: str = "linear") -> None:
        if solver not in SOLVERS:
            raise ValueError(f"solver must be one of {SOLVERS}, got {solver!r}")
        if schedule not in SCHEDULES:
            raise ValueError(f"schedule must be one of {SCHEDULES}, got {schedule!r}")
        if steps < 1:
            raise ValueError(f"steps must be >= 1, got {steps}")
        self.steps = steps
        self.cfg = cfg
        self.solver = solver
        self.schedule = schedule

    @torch.no_grad()
    def sample(self, fn: VelocityFn, h: Tensor, x0: Tensor) -> Tensor:
        """Solve ``dx/dt = v(x, t, h)`` from ``x0`` ``[N, D]`` at ``t = 0`` to ``t = 1``; returns ``[N, D]``."""
        if x0.shape[0] != h.shape[0]:
            raise ValueError(f"x0 has {x0.shape[0]} rows, h {h.shape[0]}")
        ts = time_grid(self.steps, self.schedule, device=x0.device)
        x = x0
        ones = torch.ones(x.shape[0], device=x.device, dtype=torch.float32)
        for i in range(self.steps):
            t0, dt = ts[i], ts[i + 1] - ts[i]
            v = guided_velocity(fn, x, ones * t0, h, self.cfg)
            if self.solver == "midpoint":
                x_mid = x + (0.5 * dt) * v
                v = guided_velocity(fn, x_mid, ones * (t0 + 0.5 * dt), h, self.cfg)
            x = x + dt * v
        return x
