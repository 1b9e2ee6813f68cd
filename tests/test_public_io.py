"""The codec's public file functions (what ``tts`` uses): the checks and errors of ``hylac-codec``."""

from __future__ import annotations

import re
import struct
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

import codec
from codec.cli.main import main as cli_main
from codec.io.audio import resample

SR = codec.SAMPLE_RATE


def _tone(seconds: float, rate: int, channels: int = 1) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    x = np.stack([0.3 * np.sin(2 * np.pi * (200 + 50 * c) * t) for c in range(channels)], axis=1)
    return x.astype(np.float32)


def _truncated_wav(path: Path) -> None:
    sf.write(path, _tone(1.0, SR), SR)
    path.write_bytes(path.read_bytes()[:20000])


def _nan_wav(path: Path) -> None:
    x = _tone(0.5, SR)
    x[1000] = np.nan
    sf.write(path, x, SR, subtype="FLOAT")


BAD_INPUTS = {
    "text": lambda p: p.write_text("just some text\n"),
    "empty": lambda p: p.write_bytes(b""),
    "safetensors": lambda p: p.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{}"),
    "truncated wav": _truncated_wav,
    "zero samples": lambda p: sf.write(p, np.zeros(0, np.float32), SR),
    "NaN": _nan_wav,
    "missing": lambda p: None,
    "folder": lambda p: p.mkdir(),
}


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.manual_seed(0)
    return codec.HybridCodec(codec.CodecConfig.tiny()).eval().save(tmp_path_factory.mktemp("model") / "tiny")


@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_read_audio_refuses_what_the_cli_refuses_with_its_message(case, tmp_path, model_dir, capsys):
    src = tmp_path / "input.wav"
    BAD_INPUTS[case](src)
    with pytest.raises(codec.AudioInputError) as caught:
        codec.read_audio(src)
    assert caught.value.path == src and str(caught.value) == f"{src}: {caught.value.problem}"
    if case != "folder":  # the CLI searches a folder for audio files instead
        assert cli_main(["encode", str(src), "-o", str(tmp_path / "x.hylat"), "--model", str(model_dir)]) \
            == codec.ExitCode.FAILED
        assert capsys.readouterr().err.strip() == f"hylac-codec: error: {caught.value}"
    if src.is_file():  # an upload of the same bytes: the same problem, named by the upload
        with pytest.raises(codec.AudioInputError) as upload:
            codec.read_audio_bytes(src.read_bytes(), "voice.wav")
        assert str(upload.value) == f"voice.wav: {caught.value.problem}"


def test_what_is_not_audio_is_named_for_what_it_is(tmp_path):
    expected = {"text": "(a text file;", "safetensors": "(a safetensors file: model weights or latents",
                "truncated wav": "truncated WAV: header declares", "empty": "empty file (0 bytes)",
                "NaN": "NaN or Inf samples (first at", "missing": "no such file",
                "folder": "is a folder, not an audio file", "zero samples": "zero-length audio"}
    for case, text in expected.items():
        src = tmp_path / f"{case}.wav"
        BAD_INPUTS[case](src)
        with pytest.raises(codec.AudioInputError, match=re.escape(text)):
            codec.read_audio(src)


def test_read_audio_down_mixes_resamples_or_keeps_the_rate(tmp_path):
    stereo = _tone(1.0, 16000, channels=2)
    sf.write(tmp_path / "s.flac", stereo, 16000)
    mono = stereo.mean(axis=1)
    wav, info = codec.read_audio(tmp_path / "s.flac")
    assert (info.sample_rate, info.channels, info.num_samples) == (16000, 2, 16000)
    np.testing.assert_allclose(wav, resample(mono, 16000, SR), atol=2e-4)  # PCM_16 on disk
    own, _ = codec.read_audio(tmp_path / "s.flac", target_rate=None)
    assert own.dtype == np.float32 and own.shape == (16000,)
    data = (tmp_path / "s.flac").read_bytes()
    upload, upload_info = codec.read_audio_bytes(data, "s.flac")
    np.testing.assert_array_equal(upload, wav)
    assert upload_info.path == Path("s.flac") and upload_info.channels == 2


def test_write_audio_is_atomic_and_follows_the_suffix(tmp_path):
    wav = _tone(0.5, SR)[:, 0]
    out = codec.write_audio(tmp_path / "sub" / "a.flac", wav * 4, SR)  # clipped, folders made
    data, rate = sf.read(str(out), dtype="float32")
    assert rate == SR and sf.info(str(out)).format == "FLAC" and np.abs(data).max() <= 1.0
    with pytest.raises(codec.OutputExistsError, match="pass --overwrite"):
        codec.write_audio(out, wav, SR)
    codec.write_audio(out, wav, SR, overwrite=True)
    if codec.AUDIO_FORMATS["opus"].available:
        assert sf.info(str(codec.write_audio(tmp_path / "a.opus", wav, SR))).subtype == "OPUS"
    with pytest.raises(codec.OutputWriteError, match="cannot write PCM_16 audio to a .xyz file"):
        codec.write_audio(tmp_path / "a.xyz", wav, SR)

    class Boom(RuntimeError):
        pass

    with pytest.raises(Boom), codec.AudioWriter(tmp_path / "b.wav", SR) as writer:
        writer.write(wav)
        raise Boom
    assert not (tmp_path / "b.wav").exists() and not list(tmp_path.glob(".b.*"))


def test_check_output_refuses_before_any_work(tmp_path):
    (tmp_path / "exists.wav").write_bytes(b"x")
    with pytest.raises(codec.OutputExistsError):
        codec.check_output(tmp_path / "exists.wav")
    codec.check_output(tmp_path / "exists.wav", overwrite=True)
    with pytest.raises(codec.OutputWriteError, match="it is a folder"):
        codec.check_output(tmp_path)
    (tmp_path / "file").write_text("a file where a folder should be")
    with pytest.raises(codec.OutputWriteError, match="is a file, not a folder"):
        codec.check_output(tmp_path / "file" / "sub" / "a.wav")
    codec.check_output(tmp_path / "new" / "a.wav")
    assert not (tmp_path / "new").exists()  # nothing made


def test_latent_bytes_round_trip_and_bad_bytes_are_named(tmp_path):
    torch.manual_seed(0)
    model = codec.HybridCodec(codec.CodecConfig.tiny()).eval()
    latents = model.encode(torch.from_numpy(_tone(0.5, SR)[:, 0]), SR)
    data = codec.latents_to_bytes(latents, model, channels=2, original_sample_rate=44100)
    (tmp_path / "a.hylat").write_bytes(data)
    assert codec.load_latents(tmp_path / "a.hylat", model)[1] == codec.latents_from_bytes(data, "a.hylat")[1]
    back, info = codec.latents_from_bytes(data, "a.hylat", model)
    assert torch.equal(back.semantic, latents.semantic) and torch.equal(back.acoustic_codes, latents.acoustic_codes)
    assert (info.channels, info.original_sample_rate, info.num_samples) == (2, 44100, latents.num_samples)
    wav = tmp_path / "x.wav"
    sf.write(wav, _tone(0.2, SR), SR)
    for bad in (b"", data[: len(data) // 2], wav.read_bytes(), struct.pack("<Q", 2) + b"{}"):
        (tmp_path / "bad.hylat").write_bytes(bad)
        with pytest.raises(codec.LatentFileError) as from_file:
            codec.load_latents(tmp_path / "bad.hylat")
        with pytest.raises(codec.LatentFileError) as from_bytes:
            codec.latents_from_bytes(bad, "upload.hylat")
        problem = from_file.value.problem.replace(str(tmp_path / "bad.hylat"), "upload.hylat")
        assert str(from_bytes.value) == f"upload.hylat: {problem}"
