"""`make demo`: round-trip the bundled clips through hylac-tiny and speak one sentence per language.

Writes ``OUT/<clip>.wav`` (decoded) next to ``OUT/<clip>_original.wav`` and prints bitrate,
PESQ-WB and STOI per clip, for the bundled corpus clips (one held-out synthetic voice per
language) and the bundled real human recordings (public-domain LibriVox, ``codec/assets/real``);
then, when the TTS model is shipped, ``OUT/tts_<lang>.wav`` with the held-out corpus voices and
``OUT/tts_real_en.wav`` with the real voice as the prompt.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import soundfile as sf
import torch

import codec
from codec import metrics
from codec.io.audio import resample

ASSETS = Path(codec.__file__).parent / "assets"
REAL = ASSETS / "real"  # public-domain recordings of one human reader (the corpus is synthetic)


def round_trip(model: codec.HybridCodec, path: Path, name: str, lang: str, out: Path) -> None:
    """Encode + decode one file; write both at 24 kHz and print bitrate, PESQ-WB, STOI, RTF."""
    wav, sr = sf.read(str(path), dtype="float32", always_2d=True)
    x = torch.from_numpy(wav.T.copy())
    start = time.perf_counter()
    latents = model.encode(x, sr)
    y = model.decode(latents)[0, 0]
    rtf = (time.perf_counter() - start) / latents.duration
    ref = x.mean(0)  # the down-mixed input the codec saw
    if sr != model.sample_rate:
        ref = torch.from_numpy(resample(ref.numpy(), sr, model.sample_rate))
    sf.write(str(out / f"{name}_original.wav"), ref.numpy(), model.sample_rate)
    sf.write(str(out / f"{name}.wav"), y.numpy(), model.sample_rate)
    pesq = metrics.pesq_wb(ref.numpy(), y.numpy(), model.sample_rate)
    stoi = metrics.stoi(ref.numpy(), y.numpy(), model.sample_rate)
    print(f"{name:<28} {lang:<4} {latents.duration:5.1f} {model.bitrate / 1000:5.2f} {pesq:7.2f} {stoi:5.2f} {rtf:6.3f}")


def read_manifest(manifest: Path) -> list[dict]:
    return [json.loads(line) for line in manifest.read_text(encoding="utf-8").splitlines() if line.strip()]


def codec_demo(model_name: str, out: Path) -> None:
    model = codec.load(model_name)
    synthetic, real = read_manifest(ASSETS / "manifest.jsonl"), read_manifest(REAL / "manifest.jsonl")
    print(f"codec {model.name}: {model.bitrate / 1000:.2f} kbps "
          f"({model.frame_rate} Hz x (13 + 36 x log2(21)) bits), {len(synthetic) + len(real)} clips -> {out}/")
    print(f"{'clip':<28} {'lang':<4} {'sec':>5} {'kbps':>5} {'PESQ-WB':>7} {'STOI':>5} {'RTF':>6}")
    print("held-out corpus voices (synthetic):")
    for e in synthetic:
        round_trip(model, ASSETS / e["path"], Path(e["path"]).stem, e.get("lang", "?"), out)
    print("real human speech (LibriVox, public domain; 16 kHz MP3-sourced, so band-limited to 8 kHz):")
    for e in real:
        round_trip(model, REAL / e["path"], Path(e["path"]).stem, e.get("lang", "?"), out)


def tts_demo(out: Path) -> None:
    import tts

    if "hylac-tts-tiny" not in tts.available_models():
        print("tts: no shipped hylac-tts-tiny model yet; skipping speech generation")
        return
    from tts.demo import speak_demo

    synth = tts.load("hylac-tts-tiny")
    files = speak_demo(synth, ASSETS / "manifest.jsonl", out, split="test")
    print(f"tts: wrote {len(files)} sentences (one per language, held-out voice prompts): "
          + ", ".join(p.name for p in files))
    files = speak_demo(synth, REAL / "manifest.jsonl", out, split="real", prefix="tts_real")
    print("tts: the English sentence again with the real human voice as the prompt: "
          + ", ".join(p.name for p in files))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--out", default="out", help="output folder (default: out)")
    p.add_argument("--model", default="hylac-tiny", help="codec name or folder (default: hylac-tiny)")
    p.add_argument("--no-tts", action="store_true", help="only the codec round trip")
    args = p.parse_args(argv)
    torch.set_num_threads(2)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    codec_demo(args.model, out)
    if not args.no_tts:
        tts_demo(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
