"""The .hylat latent file: exact round trip, codec identity, versioning, damage detection, atomic writes."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save

import codec
from codec.io.latent_file import (
    CodecMismatchError,
    CodecStamp,
    LatentFileError,
    UnsupportedVersionError,
    load_latents,
    read_latent_info,
    save_latents,
)
from codec.io.output import OutputExistsError, OutputWriteError, atomic_output
from codec.latents import FRAME_SIZE, Latents

STAMP = CodecStamp("hylac-test", "ab" * 32, "12" * 32, 24000, 12.5, 8192, 21)


def random_latents(frames: int = 20, num_samples: int | None = None, seed: int = 0) -> Latents:
    g = torch.Generator().manual_seed(seed)
    num_samples = frames * FRAME_SIZE - 123 if num_samples is None else num_samples
    return Latents(
        torch.randint(0, 8192, (1, frames), generator=g),
        torch.randint(0, 21, (1, frames, 36), generator=g),
        num_samples,
    )


def rewrite_metadata(path: Path, **changes: str) -> None:
    """Re-save a latent file with some metadata values replaced (tensors kept)."""
    data = path.read_bytes()
    with safe_open(str(path), "pt") as f:
        metadata = dict(f.metadata())
    metadata.update(changes)
    path.write_bytes(st_save(st_load(data), metadata=metadata))


@pytest.fixture
def saved(tmp_path: Path) -> tuple[Path, Latents]:
    latents = random_latents()
    path = save_latents(tmp_path / "x.hylat", latents, STAMP, channels=2, original_sample_rate=44100)
    return path, latents


def test_round_trip_is_exact_and_records_metadata(saved: tuple[Path, Latents]) -> None:
    path, latents = saved
    loaded, info = load_latents(path, STAMP)
    assert torch.equal(loaded.semantic, latents.semantic)
    assert torch.equal(loaded.acoustic_codes, latents.acoustic_codes)
    assert loaded.num_samples == latents.num_samples and loaded.acoustic_levels == 21
    assert (info.codec_name, info.codec_weights_sha256) == (STAMP.name, STAMP.weights_hash)
    assert info.codec_latent_sha256 == STAMP.latent_hash
    assert (info.channels, info.original_sample_rate, info.sample_rate) == (2, 44100, 24000)
    assert info.num_frames == 20 and info.format_version == 1
    assert info.bitrate == pytest.approx(12.5 * (13 + 36 * torch.log2(torch.tensor(21.0)).item()))
    assert read_latent_info(path) == info


def test_file_is_compact_safetensors_without_pickle(saved: tuple[Path, Latents]) -> None:
    path, latents = saved
    raw = path.read_bytes()
    (header_len,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8 : 8 + header_len])
    assert header["semantic"]["dtype"] == "U16" and header["semantic"]["shape"] == [20]
    assert header["acoustic"]["dtype"] == "U8" and header["acoustic"]["shape"] == [20, 36]
    assert all(isinstance(v, str) for v in header["__metadata__"].values())
    # codes take 2 + 36 bytes per frame; the rest is a small header
    assert len(raw) - 8 - header_len == 20 * (2 + 36)
    assert b"\x80\x04" not in raw[:2]  # not a pickle stream


def test_a_real_codec_identifies_itself(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = codec.HybridCodec(codec.CodecConfig.tiny()).eval()
    latents = model.encode(torch.randn(5000) * 0.1, 24000)
    path = save_latents(tmp_path / "m.hylat", latents, model)
    loaded, info = load_latents(path, model)
    assert info.codec_weights_sha256 == model.weights_hash and info.num_samples == 5000
    assert torch.equal(loaded.semantic, latents.semantic)
    with torch.no_grad():
        model.encoder.inp.conv.weight.add_(1.0)  # same name, another encoder
    with pytest.raises(CodecMismatchError):
        load_latents(path, model)


def test_a_decoder_fine_tune_still_reads_the_files(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = codec.HybridCodec(codec.CodecConfig.tiny()).eval()
    latents = model.encode(torch.randn(5000) * 0.1, 24000)
    path = save_latents(tmp_path / "m.hylat", latents, model)
    tuned = codec.HybridCodec(codec.CodecConfig.tiny()).eval()
    tuned.load_state_dict(model.state_dict())
    with torch.no_grad():
        for p in tuned.decoder.parameters():
            p.add_(0.01)
    assert tuned.weights_hash != model.weights_hash and tuned.latent_hash == model.latent_hash
    loaded, info = load_latents(path, tuned)
    assert info.codec_latent_sha256 == tuned.latent_hash
    assert torch.equal(loaded.semantic, latents.semantic)
    with torch.no_grad():
        tuned.quantizer.semantic.codebook.add_(0.01)  # the codes now mean something else
    with pytest.raises(CodecMismatchError):
        load_latents(path, tuned)


def test_files_without_a_latent_hash_need_the_same_weights(saved: tuple[Path, Latents]) -> None:
    path, _ = saved
    with safe_open(str(path), "pt") as f:
        metadata = dict(f.metadata())
    del metadata["codec_latent_sha256"]
    path.write_bytes(st_save(st_load(path.read_bytes()), metadata=metadata))
    info = read_latent_info(path)
    assert info.codec_latent_sha256 == ""
    load_latents(path, STAMP)
    with pytest.raises(CodecMismatchError):
        load_latents(path, CodecStamp("hylac-test", "cd" * 32, STAMP.latent_hash, 24000, 12.5, 8192, 21))


@pytest.mark.parametrize("other", [
    CodecStamp("hylac-test", "cd" * 32, "34" * 32, 24000, 12.5, 8192, 21),
    CodecStamp("hylac-large", "ab" * 32, "56" * 32, 24000, 12.5, 8192, 21),
])
def test_other_codec_is_a_clear_error_naming_both(saved: tuple[Path, Latents], other: CodecStamp) -> None:
    path, _ = saved
    with pytest.raises(CodecMismatchError) as err:
        load_latents(path, other)
    message = str(err.value)
    assert str(path) in message
    assert f"'{STAMP.name}' (weights {STAMP.weights_hash[:12]})" in message
    assert f"'{other.name}' (weights {other.weights_hash[:12]})" in message
    load_latents(path)  # without a codec to check against, the file itself is fine


def test_newer_format_version_is_refused(saved: tuple[Path, Latents]) -> None:
    path, _ = saved
    rewrite_metadata(path, format_version="2")
    for read in (load_latents, read_latent_info):
        with pytest.raises(UnsupportedVersionError, match="version 2, newer than this hylac reads"):
            read(path)


@pytest.mark.parametrize("keep", [0, 5, 100, -300, -1])
def test_truncated_file_is_detected(saved: tuple[Path, Latents], keep: int) -> None:
    path, _ = saved
    raw = path.read_bytes()
    path.write_bytes(raw[:keep] if keep >= 0 else raw[:keep])
    with pytest.raises(LatentFileError, match="empty|truncated|damaged") as err:
        load_latents(path, STAMP)
    assert str(path) in str(err.value)


def test_flipped_code_byte_is_detected(saved: tuple[Path, Latents]) -> None:
    path, _ = saved
    raw = bytearray(path.read_bytes())
    raw[-5] ^= 0x01  # an acoustic code: still a valid value, so only the checksum can tell
    path.write_bytes(bytes(raw))
    with pytest.raises(LatentFileError, match="corrupted"):
        load_latents(path, STAMP)


def test_files_that_are_not_latents(tmp_path: Path) -> None:
    text = tmp_path / "notes.hylat"
    text.write_text("hello, this is not a latent file at all\n")
    other = tmp_path / "weights.hylat"
    other.write_bytes(st_save({"w": torch.zeros(3)}, metadata={"format": "pt"}))
    for path in (text, other):
        with pytest.raises(LatentFileError, match="not a"):
            load_latents(path)
    with pytest.raises(LatentFileError, match="no such file"):
        load_latents(tmp_path / "missing.hylat")


def test_inconsistent_metadata_is_detected(saved: tuple[Path, Latents]) -> None:
    path, _ = saved
    rewrite_metadata(path, num_samples=str(5 * FRAME_SIZE))  # 5 frames announced, 20 stored
    with pytest.raises(LatentFileError, match="holds 20 frames"):
        load_latents(path)


def test_save_rejects_what_a_file_cannot_hold(tmp_path: Path) -> None:
    batch = Latents(torch.zeros(2, 3, dtype=torch.long), torch.zeros(2, 3, 36, dtype=torch.long), 3 * FRAME_SIZE)
    with pytest.raises(ValueError, match="batch of 2"):
        save_latents(tmp_path / "b.hylat", batch, STAMP)
    bad = Latents(torch.full((1, 3), 9000), torch.zeros(1, 3, 36, dtype=torch.long), 3 * FRAME_SIZE)
    with pytest.raises(ValueError, match="codebook"):
        save_latents(tmp_path / "c.hylat", bad, STAMP)
    assert list(tmp_path.iterdir()) == []


def test_existing_file_is_kept_unless_overwrite(saved: tuple[Path, Latents]) -> None:
    path, _ = saved
    before = path.read_bytes()
    other = random_latents(frames=7, seed=1)
    with pytest.raises(OutputExistsError):
        save_latents(path, other, STAMP)
    assert path.read_bytes() == before
    save_latents(path, other, STAMP, overwrite=True)
    assert load_latents(path)[0].num_frames == 7
    assert [p.name for p in path.parent.iterdir()] == ["x.hylat"]  # no temporary left over


def test_failed_write_leaves_nothing(tmp_path: Path) -> None:
    target = tmp_path / "out.hylat"
    with pytest.raises(RuntimeError), atomic_output(target) as tmp:
        tmp.write_bytes(b"partial")
        raise RuntimeError("interrupted mid-write")
    assert list(tmp_path.iterdir()) == []
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(OutputWriteError, match="cannot write output"):
        save_latents(blocker / "sub" / "a.hylat", random_latents(), STAMP)
