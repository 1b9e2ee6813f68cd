"""Speaking sentences with the corpus voices (espeak-ng, MBROLA, Festival) and finishing the audio."""


from __future__ import annotations

import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import soundfile as sf

from codec.latents import SAMPLE_RATE
from codec.training.corpus.voices import Speaker


def require_program(cmd: str, package: str) -> None:
    if shutil.which(cmd) is None:
        raise RuntimeError(f"{cmd} not found: install the Debian package {package}")


def _espeak_one(speaker: Speaker, text: str, tmp: Path) -> tuple[np.ndarray, int, int]:
    wav = tmp / "out.wav"
    cmd = [
        "espeak-ng",
        "-v",
        speaker.voice.voice,
        "-s",
        str(speaker.rate),
        "-p",
        str(speaker.pitch),
        "-w",
        str(wav),
        "--stdin",
    ]
    res = subprocess.run(cmd, input=text.encode("utf-8"), capture_output=True, timeout=120)
    err = res.stderr.decode("utf-8", errors="replace")
    if res.returncode != 0 or not wav.is_file() or wav.stat().st_size <= 44:
        raise RuntimeError(
            f"espeak-ng voice {speaker.voice.voice} failed on {text!r}: {err.strip()[:300]}"
        )
    x, sr = sf.read(str(wav), dtype="float32", always_2d=True)
    # MBROLA reports each diphone its voice lacks; it plays silence in its place.
    return x.mean(axis=1), sr, err.count("unknown, replaced")


def _scheme_string(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _festival_many(
    speaker: Speaker, texts: Sequence[str], tmp: Path
) -> list[tuple[np.ndarray, int, int]]:
    # One festival process for the whole batch: loading a voice costs far more than
    # synthesising a sentence. Output is identical to text2wave's, sentence by sentence.
    lines = [
        f"(voice_{speaker.voice.voice})",
        f"(Parameter.set 'Duration_Stretch {175.0 / speaker.rate:.3f})",
    ]
    for i, text in enumerate(texts):
        lines.append(
            f'(utt.save.wave (SynthText {_scheme_string(text)}) "{tmp / f"{i}.wav"}" \'riff)'
        )
    script = tmp / "batch.scm"
    # Festival reads 8-bit text; its Spanish and Italian voices expect Latin-1.
    script.write_bytes("\n".join(lines).encode("latin-1", errors="replace"))
    res = subprocess.run(["festival", "--batch", str(script)], capture_output=True, timeout=600)
    err = (res.stderr + res.stdout).decode("utf-8", errors="replace")
    out = []
    for i, text in enumerate(texts):
        wav = tmp / f"{i}.wav"
        if res.returncode != 0 or not wav.is_file() or wav.stat().st_size <= 44:
            raise RuntimeError(
                f"festival voice {speaker.voice.voice} failed on {text!r}: {err.strip()[:300]}"
            )
        x, sr = sf.read(str(wav), dtype="float32", always_2d=True)
        out.append((x.mean(axis=1), sr, 0))
    return out


def synthesize_many(speaker: Speaker, texts: Sequence[str]) -> list[tuple[np.ndarray, int, int]]:
    """Run the speaker's engine on each text.

    Returns:
        Per text: (samples [N] float32, sample rate, number of diphones MBROLA lacked and
        replaced with silence).

    Raises:
        RuntimeError: the engine failed (its message is included).
    """
    if not texts:
        return []
    with tempfile.TemporaryDirectory(prefix="hylac-tts-") as tmp:
        if speaker.voice.engine == "festival":
            return _festival_many(speaker, texts, Path(tmp))
        return [_espeak_one(speaker, t, Path(tmp)) for t in texts]


def finish_audio(x: np.ndarray, sr: int, target_db: float = -20.0) -> np.ndarray:
    """Resample to 24 kHz, trim silence at both ends (keeping 0.1 s), normalise the RMS.

    Args:
        x: [N] float samples at `sr`.
    Returns:
        [M] float32 at 24 kHz, RMS `target_db` dBFS unless that would push the peak past 0.99.
    """
    import soxr

    y = soxr.resample(x.astype(np.float64), sr, SAMPLE_RATE, quality="HQ").astype(np.float32)
    hop = SAMPLE_RATE // 100
    n = len(y) // hop
    if n == 0:
        return y
    rms = np.sqrt((y[: n * hop].reshape(n, hop) ** 2).mean(axis=1) + 1e-12)
    active = np.nonzero(rms > max(rms.max() * 10 ** (-40 / 20), 1e-4))[0]
    if len(active) == 0:
        return np.zeros(0, np.float32)
    margin = SAMPLE_RATE // 10
    y = y[max(0, active[0] * hop - margin) : min(len(y), (active[-1] + 1) * hop + margin)]
    gain = 10 ** (target_db / 20) / max(float(np.sqrt((y**2).mean())), 1e-8)
    gain = min(gain, 0.99 / max(float(np.abs(y).max()), 1e-8))
    return (y * gain).astype(np.float32)
