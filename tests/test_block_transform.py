"""The block transform's fine values, its fit's weights and the loading of older transforms."""

from __future__ import annotations

import pytest
import torch

from codec.analysis import Analysis, AnalysisConfig, analyze
from codec.block_transform import BlockTransform, listener_weights
from codec.latents import fsq_codes_to_values, fsq_values_to_codes
from tests.test_analysis_rows import _gliding

CFG = AnalysisConfig()


@pytest.fixture(scope="module")
def train() -> list[Analysis]:
    return [analyze(torch.from_numpy(_gliding(seed=s))[None, None]) for s in range(4)]


def _coded(block: BlockTransform, a: Analysis) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    values = fsq_codes_to_values(fsq_values_to_codes(block.coefficients(a), 21), 21)
    return block.reconstruct(values)


def test_fine_values_refine_the_first_components_on_the_grid(train: list[Analysis]) -> None:
    fine = BlockTransform(CFG.bands, CFG.voicing_bands, (29, 2, 3), ("envelope", "f0"))
    coarse = BlockTransform(CFG.bands, CFG.voicing_bands, (29, 2, 3), ())
    for block in (fine, coarse):
        block.fit(train)
    assert fine.size == 36 and coarse.size == 34
    a = analyze(torch.from_numpy(_gliding(seed=7))[None, None])
    coefs = fine.coefficients(a)
    assert float(coefs[..., [29, 35]].abs().max()) <= 1.0  # the fine values: within half a grid step
    # Unquantized, the fine values add nothing: the inverse is the same as without them.
    env_f, _, f0_f = fine.reconstruct(coefs)
    env_c, _, f0_c = coarse.reconstruct(coarse.coefficients(a))
    assert torch.allclose(env_f, env_c, atol=1e-4) and torch.allclose(f0_f, f0_c, atol=1e-5)
    # On FSQ's grid, the frame's mean pitch and level come out finer with them.
    env_fq, _, f0_fq = _coded(fine, a)
    env_cq, _, f0_cq = _coded(coarse, a)
    f0_target = f0_c.view(1, -1, 8).mean(-1)
    err_fine = (f0_fq.view(1, -1, 8).mean(-1) - f0_target).abs().mean()
    err_coarse = (f0_cq.view(1, -1, 8).mean(-1) - f0_target).abs().mean()
    assert err_fine < 0.5 * err_coarse
    level = env_c.mean(-1)
    assert (env_fq.mean(-1) - level).abs().mean() < (env_cq.mean(-1) - level).abs().mean()


def test_the_fit_weighs_bands_for_a_listener_and_fits_loud_frames_only(train: list[Analysis]) -> None:
    w = listener_weights(CFG.bands)
    assert w[0] == 1.0 and w[-1] == pytest.approx(0.05) and bool((w[1:] <= w[:-1]).all())
    block = BlockTransform(CFG.bands, CFG.voicing_bands)
    block.fit(train)
    assert torch.allclose(block.envelope_weight, w.repeat(8))
    # The weighting is undone on the way back: all components give the envelope back.
    a = train[0]
    envelope, _, _ = block.reconstruct(block.coefficients(a))
    assert float((envelope - a.log_envelope).abs().mean()) < 0.3
    silent = analyze(torch.zeros(1, 1, 1920 * 4))
    with pytest.raises(ValueError, match="louder than -50"):
        BlockTransform(CFG.bands, CFG.voicing_bands).fit([silent])


def test_steps_with_a_periodic_share_keep_their_own_pitch() -> None:
    t = 16
    f0 = torch.linspace(100.0, 160.0, t)[None]
    voiced = torch.zeros(1, t, dtype=torch.bool)
    voiced[0, :4] = True
    voicing = torch.full((1, t, CFG.voicing_bands), 0.8)
    a = Analysis(torch.zeros(1, t, CFG.bands), voicing, f0, voiced, torch.zeros(1, t), torch.zeros(1, t))
    block = BlockTransform(CFG.bands, CFG.voicing_bands)
    block.voiced_share.fill_(0.5)
    assert torch.allclose(block.blocks(a)["f0"].exp().view(1, -1), f0, rtol=1e-5)
    block.voiced_share.fill_(2.0)  # YIN's flag alone: the unvoiced steps take the voiced mean
    held = block.blocks(a)["f0"].exp().view(1, -1)
    assert torch.allclose(held[0, 4:8], f0[0, :4].log().mean().exp().expand(4), rtol=1e-5)


def test_a_transform_saved_without_the_fits_weights_loads_unweighted(train: list[Analysis]) -> None:
    block = BlockTransform(CFG.bands, CFG.voicing_bands, (30, 2, 4), ())
    block.fit(train, voiced_share=2.0, weighted=False)
    state = {k: v for k, v in block.state_dict().items() if k not in ("envelope_weight", "voiced_share")}
    again = BlockTransform(CFG.bands, CFG.voicing_bands, (30, 2, 4), ())
    again.envelope_weight.fill_(3.0)
    again.load_state_dict(state)
    a = analyze(torch.from_numpy(_gliding(seed=5))[None, None])
    assert torch.equal(again.coefficients(a), block.coefficients(a))
    with pytest.raises(ValueError, match="fine parts"):
        BlockTransform(CFG.bands, CFG.voicing_bands, fine=("pitch",))
