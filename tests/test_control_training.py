"""Training an analysis-driven codec: the analysis cache, the control loss, controls-only steps."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from codec.analysis import analyze
from codec.config import CodecConfig
from codec.latents import FRAME_SIZE, SAMPLE_RATE
from codec.model import HybridCodec
from codec.training.data import Utterance
from codec.training.features import (
    FeatureBatch,
    FeatureCacheError,
    FeatureDataset,
    build_feature_cache,
    collate_features,
)
from codec.training.losses import LossConfig, codec_train_step, control_losses
from tests.test_analysis import vowel

ANALYSIS_CODEC = dict(frontend="analysis", head={"kind": "source_filter"}, encoder_layers=(0, 1),
                      encoder_windows=(1, 4), encoder_strides=(8, 1), decoder_layers=(1, 0, 0),
                      decoder_windows=(4, 1, 1), decoder_strides=(1, 8, 1))


def _model() -> HybridCodec:
    torch.manual_seed(0)
    return HybridCodec(CodecConfig.tiny(**ANALYSIS_CODEC))


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("corpus")
    items = []
    for i, (f0, seconds) in enumerate([(110.0, 0.9), (180.0, 1.3), (140.0, 0.5), (230.0, 0.05)]):
        path = root / f"u{i}.wav"
        sf.write(path, vowel(seconds, f0=f0, seed=i), SAMPLE_RATE)
        items.append(Utterance(path=path, phonemes="a b", lang="en", speaker=f"s{i}"))
    return build_feature_cache(items, root / "cache", log_every=0)


def test_cache_holds_the_causal_and_centred_analysis_of_each_variant(cache: Path) -> None:
    meta = json.loads((cache / "cache.json").read_text())
    rows = np.load(cache / "features.npy")
    index = [json.loads(line) for line in (cache / "index.jsonl").read_text().splitlines()]
    assert meta["steps"] == len(rows) == sum(r["steps"] for r in index)
    assert all(r["path"].endswith(".wav") for r in index) and {r["variant"] for r in index} >= {"clean"}
    # The 50 ms utterance is shorter than a frame: not in the cache.
    assert not any(r["path"].endswith("u3.wav") for r in index)
    first = next(r for r in index if r["variant"] == "clean" and r["path"].endswith("u0.wav"))
    wav, _ = sf.read(first["path"], dtype="float32")
    wav = torch.from_numpy(wav[: len(wav) // FRAME_SIZE * FRAME_SIZE])[None, None]
    expected = torch.cat([analyze(wav).packed(), analyze(wav, causal=False).packed()], dim=-1)[0]
    stored = torch.from_numpy(rows[first["start"]:first["start"] + first["steps"]].astype(np.float32))
    torch.testing.assert_close(stored, expected, atol=0.02, rtol=0.005)  # float16 storage


def test_dataset_crops_levels_and_batches(cache: Path) -> None:
    analysis = CodecConfig.tiny(**ANALYSIS_CODEC).analysis
    ds = FeatureDataset([cache], analysis, max_steps=80, gain_db=(-6.0, -6.0))
    items = [ds[(i, 7)] for i in range(len(ds))]
    assert all(len(it.inputs) <= 80 and len(it.inputs) % 8 == 0 for it in items)
    cropped = [it for it in items if len(it.inputs) == 80]
    assert cropped and all(it.phoneme_ids.numel() == 0 for it in cropped)  # a crop loses its transcript
    assert ds[(0, 7)].inputs.equal(items[0].inputs)  # a function of the key
    plain = FeatureDataset([cache], analysis, max_steps=80, gain_db=(0.0, 0.0))[(0, 7)]
    shift = items[0].inputs[:, 8] - plain.inputs[:, 8]  # a log-envelope column of a voiced band
    loud = plain.inputs[:, 8] > -9
    assert torch.allclose(shift[loud], torch.full_like(shift[loud], -6 * np.log(10) / 20), atol=1e-3)
    batch = collate_features(items, analysis)
    assert isinstance(batch, FeatureBatch) and batch.mask.sum() == sum(len(it.inputs) for it in items)
    assert batch.lengths.tolist() == [len(it.inputs) * 240 for it in items]


def test_a_cache_of_other_settings_is_refused(cache: Path, tmp_path: Path) -> None:
    from codec.analysis import AnalysisConfig

    with pytest.raises(FeatureCacheError, match="other analysis settings"):
        FeatureDataset([cache], AnalysisConfig(window=768))
    with pytest.raises(FeatureCacheError, match="not an analysis cache"):
        FeatureDataset([tmp_path], AnalysisConfig())


def test_control_loss_is_zero_at_its_targets() -> None:
    a = analyze(torch.from_numpy(vowel(0.5))[None, None], causal=False)
    v = a.voicing.clamp(1e-6, 1 - 1e-6)
    controls = {"f0": a.f0, "envelope": a.log_envelope, "voicing": torch.log(v) - torch.log1p(-v)}
    targets = {"f0": a.f0, "voiced": a.voiced, "envelope": a.log_envelope, "voicing": v}
    parts = control_losses(controls, targets)
    assert float(parts["control_envelope"]) == 0 and float(parts["control_f0"]) == 0
    # Binary cross-entropy bottoms out at the targets' entropy; any other logit is worse.
    worse = control_losses({**controls, "voicing": controls["voicing"] + 0.5}, targets)
    assert float(worse["control_voicing"]) > float(parts["control_voicing"])


class _Opt:
    def __init__(self, params: list[torch.nn.Parameter]) -> None:
        self.optimizer = torch.optim.Adam(params, lr=3e-3)

    def step(self, name: str, loss: torch.Tensor) -> None:
        self.optimizer.zero_grad()
        loss.backward()
        self.optimizer.step()


def test_controls_only_steps_lower_the_control_loss(cache: Path) -> None:
    model = _model().train()
    ds = FeatureDataset([cache], model.config.analysis, max_steps=64)
    batch = collate_features([ds[(i, 0)] for i in range(len(ds))], model.config.analysis)
    opt = _Opt(list(model.parameters()))
    cfg = LossConfig(control=1.0)
    logs = [codec_train_step(model, None, None, None, cfg, batch, step, opt) for step in range(12)]
    assert logs[-1]["control_envelope"] < 0.7 * logs[0]["control_envelope"]
    assert "mel" not in logs[0]  # nothing was rendered
    with pytest.raises(ValueError, match="analysis front-end alone"):
        HybridCodec(CodecConfig.tiny(**{**ANALYSIS_CODEC, "frontend": "analysis+waveform"}))(batch.inputs)


def test_audio_steps_train_controls_towards_the_analysis() -> None:
    """The full pass: the head's targets come from the input's centred analysis."""
    from codec.training.data import AudioBatch
    from codec.training.losses import ReconstructionLoss

    model = _model().train()
    wav = torch.from_numpy(vowel(0.64))[None, None]
    batch = AudioBatch(wav, torch.tensor([wav.shape[-1]]), torch.zeros(1, 1, dtype=torch.long),
                       torch.zeros(1, dtype=torch.long), ["s"], ["en"], ["x"])
    cfg = LossConfig(control=1.0, mel=1.0, mel_windows=(256, 512), mel_bins=(20, 40), stft=0.0, waveform=0.0,
                     adversarial=0.0)
    logs = codec_train_step(model, None, None, ReconstructionLoss(cfg), cfg, batch, 0, _Opt(list(model.parameters())))
    assert {"mel", "control_envelope", "control_voicing", "control_f0"} <= set(logs)


def test_an_analysis_codec_streams_like_offline_plain_traced_and_int8() -> None:
    """The front-end is a streaming block: chunk by chunk gives the offline codes, and the
    decoded audio to float rounding (the pulses' phase integrates the F0, so rounding adds
    up over a second), with traced steps too; int8 keeps streaming."""
    model = _model().eval()
    x = torch.from_numpy(vowel(0.96)).view(1, 1, -1)
    offline = model.encode(x, SAMPLE_RATE)
    audio = model.decode(offline)
    for trace in (None, 1):
        with model.streaming(1, trace_frames=trace):
            chunks = [model.encode_chunk(x[..., i:i + FRAME_SIZE]) for i in range(0, x.shape[-1], FRAME_SIZE)]
            streamed = torch.cat([model.decode_chunk(c) for c in chunks], dim=-1)
        assert torch.equal(torch.cat([c.semantic for c in chunks], 1), offline.semantic)
        assert torch.equal(torch.cat([c.acoustic_codes for c in chunks], 1), offline.acoustic_codes)
        torch.testing.assert_close(streamed, audio, atol=2e-3 * float(audio.abs().max()), rtol=0)
    model.use_int8()
    with model.streaming(1, trace_frames=1):
        for i in range(0, x.shape[-1], FRAME_SIZE):
            assert model.decode_chunk(model.encode_chunk(x[..., i:i + FRAME_SIZE])).shape == (1, 1, FRAME_SIZE)


def test_a_block_transform_codec_starts_as_the_floor_coder_and_streams(cache: Path) -> None:
    """With ``block_transform`` the acoustic latent starts as the fitted transform's
    coefficients and the head's controls as their inverse: the untrained codec codes like the
    floor row, and learns corrections on top."""
    from benchmarks.systems.analysis import floor_code
    from codec.training.features import clean_analyses

    cfg = CodecConfig.tiny(**{**ANALYSIS_CODEC, "block_transform": True})
    task_model = HybridCodec(cfg).eval()
    block = task_model.encoder.block
    block.fit(clean_analyses([cache], cfg.analysis))
    task_model.decoder.block.load_state_dict(block.state_dict())
    x = torch.from_numpy(vowel(0.96, f0=150.0)).view(1, 1, -1)
    with torch.no_grad():
        quantized, controls = task_model.forward_controls(analyze(x))
    floor = floor_code(block, analyze(x))
    torch.testing.assert_close(controls["envelope"], floor.log_envelope, atol=1e-4, rtol=0)
    torch.testing.assert_close(controls["f0"], floor.f0.clamp(50, 600), rtol=1e-3, atol=0)
    offline = task_model.encode(x, SAMPLE_RATE)
    with task_model.streaming(1):
        chunks = [task_model.encode_chunk(x[..., i:i + FRAME_SIZE]) for i in range(0, x.shape[-1], FRAME_SIZE)]
    assert torch.equal(torch.cat([c.acoustic_codes for c in chunks], 1), offline.acoustic_codes)
    with pytest.raises(ValueError, match="block_transform needs"):
        CodecConfig.tiny(block_transform=True)


def test_the_task_fits_the_block_transform_on_the_cache(cache: Path) -> None:
    from codec.training.discriminator import DiscriminatorConfig
    from codec.training.task import CodecDataConfig, CodecTask
    from codec.training.teachers import TeacherConfig

    cfg = CodecConfig.tiny(**{**ANALYSIS_CODEC, "block_transform": True})
    data = CodecDataConfig(train=[str(cache)], analysis_cache=[str(cache)])
    task = CodecTask(cfg, LossConfig(adversarial=0.0), DiscriminatorConfig(), TeacherConfig(kind="none"), data)
    enc, dec = task.codec.encoder.block, task.codec.decoder.block
    assert enc.fitted and all(torch.equal(a, b) for a, b in zip(enc.state_dict().values(), dec.state_dict().values(),
                                                                strict=True))
    # Starting from other weights, the transform comes with them: nothing to fit.
    assert not CodecTask(cfg, LossConfig(adversarial=0.0), DiscriminatorConfig(), TeacherConfig(kind="none"),
                         CodecDataConfig(train=[str(cache)]), fit_transform=False).codec.encoder.block.fitted
    # Without a cache, the transform is fitted on the analysis of the training audio.
    audio = cache.parent
    manifest = audio / "list.jsonl"
    manifest.write_text("".join(json.dumps({"path": p.name, "text": "a", "speaker": "s", "split": "train"}) + "\n"
                                for p in sorted(audio.glob("u*.wav")) if p.name != "u3.wav"))  # u3: empty
    fitted = CodecTask(cfg, LossConfig(adversarial=0.0), DiscriminatorConfig(), TeacherConfig(kind="none"),
                       CodecDataConfig(train=[str(manifest)], valid=[]))
    assert fitted.codec.encoder.block.fitted
