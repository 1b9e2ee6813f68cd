"""Record the shipped codec's codes and decoded audio for fixed inputs: tests/data/golden_codes.npz.

tests/test_golden.py encodes the same inputs and compares. Rerun this only when the shipped
model itself changes (a new ``codec/pretrained/hylac-tiny``):

    .venv/bin/python scripts/golden_codes.py
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

import codec

ROOT = Path(__file__).resolve().parent.parent
GOLDEN = ROOT / "tests" / "data" / "golden_codes.npz"
MODEL = "hylac-tiny"
CLIPS = ("codec/assets/en_mb-us3.flac", "codec/assets/real/en_librivox-austen-0880.flac")
#: Decoded samples kept per input (the start, where every layer's state is still filling).
SLICE = 4800


def synthetic_stereo() -> tuple[np.ndarray, int]:
    """A deterministic 44.1 kHz stereo signal ``[2, N]``, 2 s: a gliding harmonic tone and noise."""
    rate = 44100
    t = np.arange(2 * rate) / rate
    phase = 2 * np.pi * np.cumsum(140.0 + 60.0 * t) / rate
    tone = sum(0.2 / k * np.sin(k * phase) for k in range(1, 8)) * (0.5 + 0.5 * np.sin(2 * np.pi * 1.5 * t))
    noise = 0.02 * np.random.default_rng(0).standard_normal(t.shape)
    return np.stack([tone + noise, 0.7 * tone - noise]).astype(np.float32), rate


def inputs() -> dict[str, tuple[np.ndarray, int]]:
    """Name -> (samples ``[C, N]`` float32, sample rate) as handed to ``model.encode``."""
    out = {}
    for clip in CLIPS:
        wav, rate = sf.read(ROOT / clip, dtype="float32", always_2d=True)
        out[Path(clip).stem] = (wav.T.copy(), rate)
    out["synthetic_44k_stereo"] = synthetic_stereo()
    return out


def frame_rms(audio: np.ndarray) -> np.ndarray:
    """RMS of ``audio [N]`` per 1920-sample frame (the last one zero-padded)."""
    pad = -len(audio) % codec.FRAME_SIZE
    frames = np.pad(audio, (0, pad)).reshape(-1, codec.FRAME_SIZE)
    return np.sqrt(np.mean(frames.astype(np.float64) ** 2, axis=1))


def encode_decode(model: codec.HybridCodec) -> dict[str, dict[str, np.ndarray]]:
    """Per input: ``semantic [T]``, ``acoustic [T, A]`` codes, decoded ``head [SLICE]`` and ``rms [T]``."""
    results = {}
    for name, (wav, rate) in inputs().items():
        latents = model.encode(torch.from_numpy(wav), rate)
        audio = model.decode(latents)[0, 0].numpy()
        results[name] = {
            "semantic": latents.semantic[0].numpy().astype(np.int16),
            "acoustic": latents.acoustic_codes[0].numpy().astype(np.uint8),
            "head": audio[:SLICE].astype(np.float32),
            "rms": frame_rms(audio).astype(np.float32),
        }
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=GOLDEN)
    args = parser.parse_args()
    torch.manual_seed(0)
    model = codec.load(MODEL)
    arrays: dict[str, np.ndarray] = {
        "weights_hash": np.array(model.weights_hash), "latent_hash": np.array(model.latent_hash),
    }
    for name, fields in encode_decode(model).items():
        arrays.update({f"{name}/{key}": value for key, value in fields.items()})
    args.out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(args.out, **arrays)
    print(f"wrote {args.out} ({args.out.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
