"""Long audio streams through the codec in bounded chunks and gives the whole-file result."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import soxr
import torch

import codec
from codec.cli.commands import RunOptions, decode_paths, encode_paths, encode_stream
from codec.io.audio import AudioInputError, AudioReader
from codec.io.latent_file import load_latents
from codec.latents import FRAME_SIZE, SAMPLE_RATE


def speech_like(seconds: float, rate: int, seed: int = 0) -> np.ndarray:
    """Harmonics of a gliding pitch, gated at a syllable rate, plus a little noise: ``[N]`` float32."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * rate)) / rate
    f0 = 120 + 30 * np.sin(2 * np.pi * 0.3 * t)
    phase = 2 * np.pi * np.cumsum(f0) / rate
    voiced = sum(np.sin(k * phase) / k for k in range(1, 8))
    envelope = np.clip(np.sin(2 * np.pi * 3.7 * t), 0, None) ** 2
    return (0.2 * voiced * envelope + 0.01 * rng.standard_normal(len(t))).astype(np.float32)


@pytest.fixture(scope="module")
def model() -> codec.HybridCodec:
    torch.manual_seed(0)
    return codec.HybridCodec(codec.CodecConfig.tiny()).eval()


class ChunkSpy:
    """Record the largest chunk the model is handed while streaming."""

    def __init__(self, model: codec.HybridCodec, monkeypatch: pytest.MonkeyPatch) -> None:
        self.max_samples = 0
        self.max_frames = 0
        encode_chunk, decode_chunk = model.encode_chunk, model.decode_chunk

        def spy_encode(wav: torch.Tensor) -> codec.Latents:
            self.max_samples = max(self.max_samples, wav.shape[-1])
            return encode_chunk(wav)

        def spy_decode(latents: codec.Latents) -> torch.Tensor:
            self.max_frames = max(self.max_frames, latents.num_frames)
            return decode_chunk(latents)

        monkeypatch.setattr(model, "encode_chunk", spy_encode)
        monkeypatch.setattr(model, "decode_chunk", spy_decode)


def test_two_minutes_chunked_equal_whole_file(
    model: codec.HybridCodec, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    wav = speech_like(120.0, SAMPLE_RATE)[: 120 * SAMPLE_RATE - 777]  # not a whole number of frames
    src = tmp_path / "long.wav"
    sf.write(src, wav, SAMPLE_RATE, subtype="FLOAT")
    options = RunOptions(chunk_seconds=30.0, subtype="FLOAT")
    spy = ChunkSpy(model, monkeypatch)

    summary = encode_paths(model, [src], tmp_path / "long.hylat", options)
    assert summary.failed == []
    chunked, info = load_latents(tmp_path / "long.hylat", model)
    monkeypatch.undo()
    whole = model.encode(torch.from_numpy(wav), SAMPLE_RATE)
    assert spy.max_samples == 30 * SAMPLE_RATE  # four chunks, never the whole file
    assert chunked.num_samples == whole.num_samples == len(wav) == info.num_samples
    assert torch.equal(chunked.semantic, whole.semantic)
    assert torch.equal(chunked.acoustic_codes, whole.acoustic_codes)

    spy = ChunkSpy(model, monkeypatch)
    summary = decode_paths(model, [tmp_path / "long.hylat"], tmp_path / "long.dec.wav", options)
    assert summary.failed == []
    monkeypatch.undo()
    assert spy.max_frames == options.chunk_frames == 375
    decoded, rate = sf.read(tmp_path / "long.dec.wav", dtype="float32")
    assert rate == SAMPLE_RATE and len(decoded) == len(wav)  # exactly the original length
    reference = model.decode(whole)[0, 0].numpy()
    np.testing.assert_allclose(decoded, reference, atol=1e-4)


def test_block_reader_equals_whole_file_resampling(tmp_path: Path) -> None:
    rate = 44100
    stereo = np.stack([speech_like(7.3, rate, seed=1), speech_like(7.3, rate, seed=2)], axis=1)
    src = tmp_path / "stereo.flac"
    sf.write(src, stereo, rate, subtype="PCM_24")
    on_disk, _ = sf.read(src, dtype="float32")
    expected = soxr.resample(on_disk.mean(axis=1).astype(np.float32), rate, SAMPLE_RATE, quality="HQ")
    block = 40 * FRAME_SIZE
    with AudioReader(src, block_size=block) as reader:
        blocks = list(reader)
        assert reader.num_samples == len(expected)
    assert all(len(b) == block for b in blocks[:-1]) and 0 < len(blocks[-1]) <= block
    np.testing.assert_allclose(np.concatenate(blocks), expected, atol=1e-6)


def test_resampled_long_input_streams_to_exact_length(model: codec.HybridCodec, tmp_path: Path) -> None:
    rate = 16000
    src = tmp_path / "narrow.wav"
    sf.write(src, speech_like(9.1, rate), rate)
    options = RunOptions(chunk_seconds=2.0)
    assert encode_paths(model, [src], tmp_path / "n.hylat", options).failed == []
    latents, info = load_latents(tmp_path / "n.hylat")
    assert info.original_sample_rate == rate
    assert latents.num_samples == round(sf.info(str(src)).frames * SAMPLE_RATE / rate)
    assert decode_paths(model, [tmp_path / "n.hylat"], tmp_path / "n.wav", options).failed == []
    assert sf.info(str(tmp_path / "n.wav")).frames == latents.num_samples


def test_bad_samples_late_in_a_long_file_fail_cleanly(model: codec.HybridCodec, tmp_path: Path) -> None:
    wav = speech_like(5.0, SAMPLE_RATE)
    wav[int(3.5 * SAMPLE_RATE)] = np.nan
    src = tmp_path / "late_nan.wav"
    sf.write(src, wav, SAMPLE_RATE, subtype="FLOAT")
    with pytest.raises(AudioInputError, match="first at 3.500 s"), AudioReader(src, block_size=25 * FRAME_SIZE) as reader:
        encode_stream(model, reader)
    summary = encode_paths(model, [src], tmp_path / "out" / "x.hylat", RunOptions(chunk_seconds=1.0))
    assert len(summary.failed) == 1 and not (tmp_path / "out").exists()


def test_decoder_failure_midway_leaves_no_partial_audio(
    model: codec.HybridCodec, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    src = tmp_path / "a.wav"
    sf.write(src, speech_like(4.0, SAMPLE_RATE), SAMPLE_RATE)
    options = RunOptions(chunk_seconds=1.0)
    assert encode_paths(model, [src], tmp_path / "a.hylat", options).failed == []
    calls = []
    decode_chunk = model.decode_chunk

    def failing(latents: codec.Latents) -> torch.Tensor:
        calls.append(latents.num_frames)
        if len(calls) == 3:
            raise RuntimeError("device lost")
        return decode_chunk(latents)

    monkeypatch.setattr(model, "decode_chunk", failing)
    out = tmp_path / "dec"
    out.mkdir()
    summary = decode_paths(model, [tmp_path / "a.hylat"], out / "a.wav", options)
    assert len(calls) == 3 and "device lost" in summary.failed[0].error
    assert list(out.iterdir()) == []  # neither the output nor its temporary file


@pytest.mark.parametrize("expected", [None, 1, 10 * SAMPLE_RATE])
def test_encode_stream_stores_codes_for_any_length_hint(model: codec.HybridCodec, expected: int | None) -> None:
    wav = speech_like(3.3, SAMPLE_RATE)
    block = 5 * FRAME_SIZE
    streamed = encode_stream(model, [wav[i : i + block] for i in range(0, len(wav), block)], expected)
    whole = model.encode(torch.from_numpy(wav), SAMPLE_RATE)
    assert streamed.num_samples == len(wav) and streamed.num_frames == whole.num_frames
    assert torch.equal(streamed.semantic, whole.semantic)
    assert torch.equal(streamed.acoustic_codes, whole.acoustic_codes)
