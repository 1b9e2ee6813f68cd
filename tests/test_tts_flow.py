"""Flow-matching head and its ODE sampler: exact integration, guidance, learning a toy distribution."""

from __future__ import annotations

import pytest
import torch

from tts.flow import FlowHead, flow_matching_loss, sinusoidal_embedding
from tts.sampler import FlowSampler, guided_velocity, time_grid

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.mark.parametrize("schedule", ["linear", "cosine"])
def test_time_grid_spans_zero_to_one(schedule):
    t = time_grid(7, schedule)
    assert t.shape == (8,)
    assert t[0] == 0.0 and t[-1] == 1.0
    assert (t[1:] > t[:-1]).all()


def test_cosine_grid_is_denser_near_noise():
    t = time_grid(8, "cosine")
    assert t[1] - t[0] < 1 / 8 < t[-1] - t[-2]


@pytest.mark.parametrize("solver", ["euler", "midpoint"])
@pytest.mark.parametrize("steps", [1, 3, 8])
def test_constant_field_is_integrated_exactly(solver, steps):
    c = torch.tensor([[0.5, -2.0, 3.0]])
    x0 = torch.randn(4, 3)
    sampler = FlowSampler(steps=steps, cfg=1.0, solver=solver)
    x1 = sampler.sample(lambda x, t, h: c.expand_as(x), torch.zeros(4, 2), x0)
    torch.testing.assert_close(x1, x0 + c, rtol=0, atol=1e-6)


@pytest.mark.parametrize("steps", [1, 2, 8, 16])
def test_euler_on_linear_field_matches_closed_form(steps):
    # dx/dt = a x: each Euler step multiplies by (1 + a dt).
    a = -0.7
    x0 = torch.randn(5, 4, dtype=torch.float64)
    sampler = FlowSampler(steps=steps, cfg=1.0, solver="euler")
    x1 = sampler.sample(lambda x, t, h: a * x, torch.zeros(5, 1), x0)
    torch.testing.assert_close(x1, x0 * (1 + a / steps) ** steps)


def test_euler_on_time_linear_field_matches_riemann_sum():
    # v = t c: Euler uses the left end of each interval, sum_i (i / n) (1 / n) = (n - 1) / (2 n).
    c = torch.tensor([[1.0, 2.0]])
    n = 4
    sampler = FlowSampler(steps=n, cfg=1.0)
    x1 = sampler.sample(lambda x, t, h: t[:, None] * c, torch.zeros(1, 1), torch.zeros(1, 2))
    torch.testing.assert_close(x1, c * (n - 1) / (2 * n))
    # The midpoint rule is exact for a field linear in t.
    x1 = FlowSampler(steps=n, cfg=1.0, solver="midpoint").sample(
        lambda x, t, h: t[:, None] * c, torch.zeros(1, 1), torch.zeros(1, 2))
    torch.testing.assert_close(x1, c * 0.5)


def _toy_field(x, t, h):
    # A field that depends on the condition: h = 0 gives a different velocity.
    return h[:, :1] * 2.0 - x * (1.0 + h[:, 1:2]) + t[:, None]


def test_cfg_alpha_one_is_the_conditional_velocity():
    x, t, h = torch.randn(6, 3), torch.rand(6), torch.randn(6, 2)
    torch.testing.assert_close(guided_velocity(_toy_field, x, t, h, 1.0), _toy_field(x, t, h))
    # Through the guided formula explicitly (both branches), alpha = 1 gives the same.
    v_c, v_u = _toy_field(x, t, h), _toy_field(x, t, torch.zeros_like(h))
    torch.testing.assert_close(v_u + 1.0 * (v_c - v_u), v_c)


def test_cfg_extrapolates_from_the_unconditional_velocity():
    x, t, h = torch.randn(6, 3), torch.rand(6), torch.randn(6, 2)
    v_c, v_u = _toy_field(x, t, h), _toy_field(x, t, torch.zeros_like(h))
    torch.testing.assert_close(guided_velocity(_toy_field, x, t, h, 2.0), v_u + 2.0 * (v_c - v_u))
    torch.testing.assert_close(guided_velocity(_toy_field, x, t, h, 0.0), v_u)


def test_sampler_counts_function_evaluations():
    calls = []

    def field(x, t, h):
        calls.append(x.shape[0])
        return torch.zeros_like(x)

    FlowSampler(steps=8, cfg=1.2).sample(field, torch.ones(3, 2), torch.zeros(3, 4))
    assert calls == [6] * 8  # one batched call (cond + uncond) per Euler step
    calls.clear()
    FlowSampler(steps=4, cfg=1.0, solver="midpoint").sample(field, torch.ones(3, 2), torch.zeros(3, 4))
    assert calls == [3] * 8


def test_sampler_rejects_bad_settings():
    with pytest.raises(ValueError, match="solver"):
        FlowSampler(solver="rk45")
    with pytest.raises(ValueError, match="schedule"):
        FlowSampler(schedule="exp")
    with pytest.raises(ValueError, match="steps"):
        FlowSampler(steps=0)


def test_sinusoidal_embedding_shapes_and_distinct_times():
    e = sinusoidal_embedding(torch.tensor([0.0, 0.5, 1.0]), 16)
    assert e.shape == (3, 16)
    assert not torch.allclose(e[0], e[1]) and not torch.allclose(e[1], e[2])


def test_flow_head_shapes_and_input_checks():
    head = FlowHead(cond_dim=8, acoustic_dim=5, dim=16, layers=1, heads=2)
    v = head(torch.randn(3, 5), torch.rand(3), torch.randn(3, 8))
    assert v.shape == (3, 5)
    with pytest.raises(ValueError, match="x must be"):
        head(torch.randn(3, 4), torch.rand(3), torch.randn(3, 8))
    with pytest.raises(ValueError, match="N=3"):
        head(torch.randn(3, 5), torch.rand(2), torch.randn(3, 8))


def test_flow_matching_learns_a_conditional_toy_distribution():
    """Two classes with different 4-d targets: the loss falls and sampling lands near them."""
    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(0)
    means = torch.tensor([[0.8, -0.6, 0.2, 0.5], [-0.5, 0.7, -0.8, 0.0]])
    cond = torch.eye(2)
    head = FlowHead(cond_dim=2, acoustic_dim=4, dim=32, layers=2, heads=2)
    opt = torch.optim.Adam(head.parameters(), lr=3e-3)
    losses = []
    for _ in range(250):
        labels = torch.randint(0, 2, (64,), generator=gen)
        target = means[labels] + 0.05 * torch.randn(64, 4, generator=gen)
        out = flow_matching_loss(head, cond[labels], target, cond_dropout=0.1, generator=gen)
        opt.zero_grad()
        out.loss.backward()
        opt.step()
        losses.append(out.loss.item())
    first, last = sum(losses[:20]) / 20, sum(losses[-20:]) / 20
    assert last < 0.5 * first, (first, last)
    head.eval()
    x0 = torch.randn(200, 4, generator=gen)
    labels = torch.arange(200) % 2
    samples = FlowSampler(steps=16, cfg=1.0).sample(head, cond[labels], x0)
    err = (samples - means[labels]).norm(dim=-1).mean()
    assert err < 0.35, err


def test_condition_dropout_zeroes_some_conditions():
    seen = []

    class Spy(torch.nn.Module):
        def forward(self, x, t, h):
            seen.append(h.clone())
            return torch.zeros_like(x)

    gen = torch.Generator().manual_seed(1)
    flow_matching_loss(Spy(), torch.ones(1000, 3), torch.zeros(1000, 2), cond_dropout=0.1, generator=gen)
    dropped = (seen[0].abs().sum(-1) == 0).float().mean()
    assert 0.06 < dropped < 0.14
    seen.clear()
    flow_matching_loss(Spy(), torch.ones(100, 3), torch.zeros(100, 2), cond_dropout=0.0, samples_per_frame=3)
    assert seen[0].shape == (300, 3) and (seen[0] == 1).all()
