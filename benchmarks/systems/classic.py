"""Classic systems: the original signal, Opus and Codec2 through their Debian command-line tools.

- `Original`: the identity, the upper bound of every score.
- `Opus` (6 / 8 kbps) and `Codec2` (3200 / 1200 bit/s) run `opusenc`/`opusdec` (opus-tools)
  and `c2enc`/`c2dec` (codec2) in a temporary folder.

Bitrates: `bitrate_kbps` is the codec payload (Opus: the audio packets inside the Ogg
stream, without container pages and headers; Codec2: the frames, without the 7-byte
file header), which is what a transport would carry; `file_kbps` counts the whole
encoded file. Both are divided by the duration of the input signal.

Delays: the quality benchmark aligns Opus to its input by cross-correlation
(`codec.metrics.align`) within `System.max_alignment_delay_s`. Codec2 does not keep the
waveform's phase, so cross-correlation has no reliable peak (it misplaced Codec2 by up to
±25 ms): its fixed decoder delay (`CODEC2_DELAY_SAMPLES`) is removed inside its wrapper.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import soundfile as sf

from benchmarks.systems.base import System, SystemOutput
from codec.metrics import resample


def _missing_tools(tools: Sequence[str], package: str) -> str | None:
    missing = [t for t in tools if shutil.which(t) is None]
    if missing:
        return (
            f"command-line tool(s) {', '.join(missing)} not found; install the Debian "
            f"package '{package}' (apt-get install {package})"
        )
    return None


def _run_tool(cmd: list[str]) -> None:
    result = subprocess.run(cmd, capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(
            f"{cmd[0]} failed with exit code {result.returncode}: {result.stderr.strip()[-500:]}"
        )


def _to_pcm16(x: np.ndarray) -> np.ndarray:
    return (np.clip(x, -1.0, 1.0) * 32767.0).round().astype("<i2")


class Original(System):
    """The input itself; its bitrate is that of 16-bit PCM at the input rate."""

    def __init__(self) -> None:
        self.name = "original"
        self.nominal_kbps = None

    def _run(self, wav: np.ndarray, sample_rate: int) -> SystemOutput:
        kbps = sample_rate * 16 / 1000.0
        return SystemOutput(audio=wav.copy(), bitrate_kbps=kbps, file_kbps=kbps)


def ogg_packet_sizes(data: bytes) -> list[int]:
    """Sizes in bytes of the logical packets of a single-stream Ogg file, in order.

    Reads the page headers only (RFC 3533): a packet is the run of lacing values up to
    and including the first one below 255.
    """
    sizes: list[int] = []
    pos, current = 0, 0
    while pos < len(data):
        if data[pos : pos + 4] != b"OggS" or pos + 27 > len(data):
            raise ValueError(f"not an Ogg page at byte {pos}")
        n_segments = data[pos + 26]
        lacing = data[pos + 27 : pos + 27 + n_segments]
        if len(lacing) != n_segments:
            raise ValueError("truncated Ogg page header")
        for value in lacing:
            current += value
            if value < 255:
                sizes.append(current)
                current = 0
        pos += 27 + n_segments + sum(lacing)
    return sizes


class Opus(System):
    """Opus through `opusenc --bitrate K` (default VBR, speech auto-detected) / `opusdec`."""

    def __init__(self, kbps: float) -> None:
        if not 6 <= kbps <= 256:
            raise ValueError(f"opusenc accepts 6 to 256 kbit/s, got {kbps}")
        self.kbps = float(kbps)
        self.name = f"opus-{kbps:g}k"
        self.nominal_kbps = float(kbps)

    def unavailable_reason(self) -> str | None:
        return _missing_tools(["opusenc", "opusdec"], "opus-tools")

    def _run(self, wav: np.ndarray, sample_rate: int) -> SystemOutput:
        with tempfile.TemporaryDirectory(prefix="hylac-opus-") as tmp:
            src, enc, dec = Path(tmp, "in.wav"), Path(tmp, "x.opus"), Path(tmp, "out.wav")
            sf.write(src, _to_pcm16(wav), sample_rate, subtype="PCM_16")
            _run_tool(
                ["opusenc", "--quiet", "--bitrate", f"{self.kbps:g}", "--discard-comments",
                 "--padding", "0", str(src), str(enc)]
            )
            # opusdec drops the encoder's pre-skip, so the output is not delayed.
            _run_tool(["opusdec", "--quiet", "--rate", "48000", str(enc), str(dec)])
            data = enc.read_bytes()
            decoded, dec_sr = sf.read(dec, dtype="float32", always_2d=True)
        duration = wav.size / sample_rate
        # The first two packets are the OpusHead and OpusTags headers.
        payload_bytes = sum(ogg_packet_sizes(data)[2:])
        return SystemOutput(
            audio=resample(decoded.mean(axis=1), dec_sr, sample_rate),
            bitrate_kbps=payload_bytes * 8 / duration / 1000.0,
            file_kbps=len(data) * 8 / duration / 1000.0,
        )


#: Bits per frame and frame length (s) of the Codec2 modes offered here.
CODEC2_MODES: dict[int, tuple[int, float]] = {3200: (64, 0.020), 2400: (48, 0.020),
                                              1600: (64, 0.040), 1400: (56, 0.040),
                                              1300: (52, 0.040), 1200: (48, 0.040)}
CODEC2_HEADER_BYTES = 7  # magic (3) + version (2) + mode (1) + flags (1)
CODEC2_RATE = 8000
# c2dec's output lags its input by one 20 ms frame: the lag that maximises STOI was
# 152-168 samples for both 3200 and 1200 on recorded-diphone and synthetic speech.
CODEC2_DELAY_SAMPLES = 160


class Codec2(System):
    """Codec2 at one of its bit rates: 8 kHz 16-bit raw -> `c2enc MODE` -> `c2dec MODE`.

    The decoder's fixed delay is removed here (see `CODEC2_DELAY_SAMPLES`).
    """

    max_alignment_delay_s = 0.0

    def __init__(self, mode: int) -> None:
        if mode not in CODEC2_MODES:
            raise ValueError(f"unsupported Codec2 mode {mode}; choose from {sorted(CODEC2_MODES)}")
        self.mode = mode
        self.name = f"codec2-{mode}"
        self.nominal_kbps = mode / 1000.0

    def unavailable_reason(self) -> str | None:
        return _missing_tools(["c2enc", "c2dec"], "codec2")

    def _run(self, wav: np.ndarray, sample_rate: int) -> SystemOutput:
        x8 = resample(wav, sample_rate, CODEC2_RATE)
        with tempfile.TemporaryDirectory(prefix="hylac-codec2-") as tmp:
            src, enc, dec = Path(tmp, "in.raw"), Path(tmp, "x.c2"), Path(tmp, "out.raw")
            src.write_bytes(_to_pcm16(x8).tobytes())
            _run_tool(["c2enc", str(self.mode), str(src), str(enc)])
            _run_tool(["c2dec", str(self.mode), str(enc), str(dec)])
            size = enc.stat().st_size
            decoded = np.frombuffer(dec.read_bytes(), dtype="<i2").astype(np.float32) / 32768.0
        decoded = decoded[CODEC2_DELAY_SAMPLES:]
        duration = wav.size / sample_rate
        return SystemOutput(
            audio=resample(decoded, CODEC2_RATE, sample_rate),
            bitrate_kbps=(size - CODEC2_HEADER_BYTES) * 8 / duration / 1000.0,
            file_kbps=size * 8 / duration / 1000.0,
        )


BASELINE_NAMES: tuple[str, ...] = ("original", "opus-6k", "opus-8k", "codec2-3200", "codec2-1200",
                                   "analysis-ceiling", "analysis-ceiling-12.5hz", "analysis-floor", "world")


def build_baseline(name: str) -> System:
    """A reference system by name: `original`, `opus-<K>k`, `codec2-<MODE>`, or a row around
    the codec's analysis (:mod:`benchmarks.systems.analysis`): `analysis-ceiling`,
    `analysis-ceiling-12.5hz`, `analysis-floor`, `world`."""
    from benchmarks.systems import analysis

    rows = {"analysis-ceiling": lambda: analysis.AnalysisCeiling(name),
            "analysis-ceiling-12.5hz": lambda: analysis.AnalysisCeiling(name, frame_rate=True),
            "analysis-floor": lambda: analysis.AnalysisFloor(name), "world": lambda: analysis.WorldVocoder(name)}
    if name in rows:
        return rows[name]()
    if name == "original":
        return Original()
    if name.startswith("opus-") and name.endswith("k"):
        try:
            return Opus(float(name[len("opus-") : -1]))
        except ValueError as exc:
            raise ValueError(f"bad Opus system {name!r}: {exc}") from exc
    if name.startswith("codec2-") and name[len("codec2-") :].isdigit():
        return Codec2(int(name[len("codec2-") :]))
    raise ValueError(
        f"unknown system {name!r}; use 'original', 'opus-<kbps>k' (e.g. opus-6k), "
        f"'codec2-<bps>' (one of {sorted(CODEC2_MODES)}) or one of {', '.join(rows)}"
    )
