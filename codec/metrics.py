"""Objective speech-quality metrics: a decoded signal scored against its reference.

Every function takes mono signals as 1-D numpy arrays or torch tensors (`[N]`; `[1, N]`
and `[1, 1, N]` are squeezed) plus their sample rate, and returns a Python float.
Reference and estimate must have the same length; `align` (or `score_pair`, which calls
it) trims a pair to a common, delay-compensated span first.

The perceptual metrics follow their standards' rates: PESQ-WB at 16 kHz, PESQ-NB at
8 kHz, STOI/ESTOI and speaker similarity from 16 kHz input; the mel distance is taken
at 24 kHz, the codec's rate, and so are the pitch metrics (`f0_error`, `vde`: YIN
tracks of `codec.analysis` every 10 ms). Inputs at other rates are resampled here.

Only numpy and torch are needed at import time, so training code can use `si_sdr` and
`mel_distance` without the evaluation extras. `pesq`, `pystoi`, `resemblyzer`,
`pocketsphinx` and `jiwer` are imported when a metric needs them
(`pip install 'hylac[eval]'`).
"""

from __future__ import annotations

import functools
import importlib
import math
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import numpy as np
import torch

from codec.io.audio import resample as _resample

ArrayLike = np.ndarray | torch.Tensor

#: Names accepted by `score_pair(..., metrics=...)`, in the order they are reported.
METRICS: tuple[str, ...] = (
    "pesq_wb",
    "pesq_nb",
    "stoi",
    "estoi",
    "si_sdr",
    "mel_distance",
    "f0_error",
    "vde",
    "speaker_similarity",
    "dwer",
)

#: (window length, number of mel bands) per scale of `mel_distance`, at 24 kHz.
MEL_SCALES: tuple[tuple[int, int], ...] = ((512, 64), (1024, 128), (2048, 128))
MEL_SAMPLE_RATE = 24000


class MetricError(ValueError):
    """A metric cannot be computed for this input (e.g. PESQ finds no speech)."""


# --------------------------------------------------------------------------- inputs


def _require(module: str, package: str, metric: str) -> Any:
    """Import an evaluation dependency, naming the package and extra when it is missing."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise ImportError(
            f"{metric} needs the '{package}' package, which is not installed; "
            f"install the evaluation extra: pip install 'hylac[eval]'"
        ) from exc


def as_mono_array(x: ArrayLike, name: str = "signal") -> np.ndarray:
    """Return `x` as a finite float64 numpy array `[N]`.

    Accepts `[N]`, `[1, N]` or `[1, 1, N]` numpy arrays or tensors. Empty input, several
    channels or NaN/Inf samples raise `ValueError` naming `name`.
    """
    if isinstance(x, torch.Tensor):
        x = x.detach().to("cpu", torch.float64).numpy()
    elif not isinstance(x, np.ndarray):
        raise TypeError(f"{name} must be a numpy array or torch tensor, got {type(x).__name__}")
    arr = np.asarray(x, dtype=np.float64)
    while arr.ndim > 1 and arr.shape[0] == 1:
        arr = arr[0]
    if arr.ndim != 1:
        raise ValueError(f"{name} must be mono with shape [N] (or [1, N]), got shape {x.shape}")
    if arr.size == 0:
        raise ValueError(f"{name} is empty")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} contains NaN or Inf samples")
    return arr


def _pair(reference: ArrayLike, estimate: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    ref = as_mono_array(reference, "reference")
    est = as_mono_array(estimate, "estimate")
    if ref.shape != est.shape:
        raise ValueError(
            f"reference ({ref.size} samples) and estimate ({est.size} samples) differ in "
            "length; trim them with codec.metrics.align first"
        )
    return ref, est


def _check_rate(sample_rate: int) -> int:
    if not isinstance(sample_rate, int | np.integer) or sample_rate <= 0:
        raise ValueError(f"sample_rate must be a positive integer, got {sample_rate!r}")
    return int(sample_rate)


def resample(x: np.ndarray, orig_sr: int, new_sr: int) -> np.ndarray:
    """Band-limited resampling of a 1-D array `[N] -> [N * new_sr / orig_sr]` (float64), with
    the codec's one resampler (`codec.io.audio.resample`)."""
    orig_sr, new_sr = _check_rate(orig_sr), _check_rate(new_sr)
    if orig_sr == new_sr:
        return x
    return _resample(x, orig_sr, new_sr).astype(np.float64)


# ------------------------------------------------------------------------- alignment


def estimate_delay(reference: ArrayLike, estimate: ArrayLike, max_delay_samples: int) -> int:
    """Lag `d` (samples) maximising the cross-correlation, with `|d| <= max_delay_samples`.

    Positive `d` means the estimate lags the reference: `estimate[n + d] ~ reference[n]`.
    """
    ref = as_mono_array(reference, "reference")
    est = as_mono_array(estimate, "estimate")
    if max_delay_samples < 0:
        raise ValueError(f"max_delay_samples must be >= 0, got {max_delay_samples}")
    if max_delay_samples == 0:
        return 0
    n = ref.size + est.size - 1
    nfft = 1 << (n - 1).bit_length()
    # corr[k] = sum_n ref[n] * est[n + k], computed for all lags at once by FFT.
    corr = np.fft.irfft(np.conj(np.fft.rfft(ref, nfft)) * np.fft.rfft(est, nfft), nfft)
    pos = corr[: min(max_delay_samples, est.size - 1) + 1]
    neg = corr[nfft - min(max_delay_samples, ref.size - 1) :] if ref.size > 1 else corr[:0]
    lags = np.concatenate([np.arange(-neg.size, 0), np.arange(pos.size)])
    values = np.concatenate([neg, pos])
    return int(lags[int(np.argmax(values))])


def align(
    reference: ArrayLike, estimate: ArrayLike, max_delay_samples: int
) -> tuple[np.ndarray, np.ndarray]:
    """Compensate the delay between two signals and trim them to a common length.

    The lag is found by cross-correlation within `±max_delay_samples` (see
    `estimate_delay`); the estimate is shifted back by it and both signals are cut to
    the overlapping span. Inputs may differ in length. Returns `(ref [M], est [M])`.
    """
    ref = as_mono_array(reference, "reference")
    est = as_mono_array(estimate, "estimate")
    return _apply_delay(ref, est, estimate_delay(ref, est, max_delay_samples))


def _apply_delay(ref: np.ndarray, est: np.ndarray, delay: int) -> tuple[np.ndarray, np.ndarray]:
    if delay > 0:
        est = est[delay:]
    elif delay < 0:
        ref = ref[-delay:]
    length = min(ref.size, est.size)
    if length == 0:
        raise ValueError(f"no overlap left after compensating a delay of {delay} samples")
    return ref[:length], est[:length]


# --------------------------------------------------------------------------- metrics


def si_sdr(reference: ArrayLike, estimate: ArrayLike) -> float:
    """Scale-invariant signal-to-distortion ratio in dB (higher is better).

    Both signals are made zero-mean; the estimate is projected on the reference and the
    energy of that projection is compared with the energy of the residual.
    """
    ref, est = _pair(reference, estimate)
    ref = ref - ref.mean()
    est = est - est.mean()
    ref_energy = float(np.dot(ref, ref))
    if ref_energy == 0.0:
        raise MetricError("SI-SDR is undefined for a constant (silent) reference")
    target = (np.dot(est, ref) / ref_energy) * ref
    noise = est - target
    # A floor relative to the reference keeps the value finite (about 200 dB) for an
    # exact copy without breaking scale invariance.
    eps = 1e-20 * ref_energy
    return float(10.0 * np.log10((np.dot(target, target) + eps) / (np.dot(noise, noise) + eps)))


def _pesq(reference: ArrayLike, estimate: ArrayLike, sample_rate: int, mode: str) -> float:
    pesq_lib = _require("pesq", "pesq", f"PESQ-{mode.upper()}")
    rate = 16000 if mode == "wb" else 8000
    ref, est = _pair(reference, estimate)
    sr = _check_rate(sample_rate)
    ref, est = resample(ref, sr, rate), resample(est, sr, rate)
    try:
        return float(pesq_lib.pesq(rate, ref, est, mode))
    except Exception as exc:  # the C library signals every failure through its own types
        raise MetricError(f"PESQ-{mode.upper()} failed: {exc}") from exc


def pesq_wb(reference: ArrayLike, estimate: ArrayLike, sample_rate: int) -> float:
    """Wide-band PESQ (ITU-T P.862.2) MOS-LQO at 16 kHz, from about 1.0 to 4.64."""
    return _pesq(reference, estimate, sample_rate, "wb")


def pesq_nb(reference: ArrayLike, estimate: ArrayLike, sample_rate: int) -> float:
    """Narrow-band PESQ (ITU-T P.862) MOS-LQO at 8 kHz, from about 1.0 to 4.55."""
    return _pesq(reference, estimate, sample_rate, "nb")


def _stoi(reference: ArrayLike, estimate: ArrayLike, sample_rate: int, extended: bool) -> float:
    name = "ESTOI" if extended else "STOI"
    pystoi = _require("pystoi", "pystoi", name)
    ref, est = _pair(reference, estimate)
    sr = _check_rate(sample_rate)
    ref, est = resample(ref, sr, 16000), resample(est, sr, 16000)
    value = float(pystoi.stoi(ref, est, 16000, extended=extended))
    if math.isnan(value):
        raise MetricError(f"{name} is undefined: no speech frames above the silence threshold")
    return value


def stoi(reference: ArrayLike, estimate: ArrayLike, sample_rate: int) -> float:
    """Short-time objective intelligibility in [0, 1] (scored from 16 kHz)."""
    return _stoi(reference, estimate, sample_rate, extended=False)


def estoi(reference: ArrayLike, estimate: ArrayLike, sample_rate: int) -> float:
    """Extended STOI (Jensen & Taal 2016), roughly in [0, 1] (scored from 16 kHz)."""
    return _stoi(reference, estimate, sample_rate, extended=True)


@functools.lru_cache(maxsize=8)
def _mel_filters(n_fft: int, n_mels: int) -> torch.Tensor:
    """``[n_mels, n_fft // 2 + 1]`` triangular HTK-mel filters, 0 Hz to Nyquist, unnormalised."""
    import librosa

    fb = librosa.filters.mel(sr=MEL_SAMPLE_RATE, n_fft=n_fft, n_mels=n_mels, htk=True, norm=None)
    return torch.from_numpy(fb.astype(np.float32))


def _mel_magnitude(x: torch.Tensor, n_fft: int, n_mels: int) -> torch.Tensor:
    """``[N]`` -> magnitude mel spectrogram ``[n_mels, frames]`` (hop ``n_fft / 4``, centred frames)."""
    spec = torch.stft(x, n_fft, n_fft // 4, window=torch.hann_window(n_fft), center=True,
                      pad_mode="reflect", return_complex=True).abs()
    return _mel_filters(n_fft, n_mels) @ spec


def mel_distance(
    reference: ArrayLike,
    estimate: ArrayLike,
    sample_rate: int,
    scales: Sequence[tuple[int, int]] = MEL_SCALES,
) -> float:
    """Multi-scale log-mel L1 distance at 24 kHz (lower is better; 0 for identical input).

    For each `(window, n_mels)` scale: magnitude mel spectrogram with hop `window / 4`,
    `log10(max(mel, 1e-5))`, mean absolute difference; the result is the mean over scales.
    """
    ref, est = _pair(reference, estimate)
    sr = _check_rate(sample_rate)
    ref_t = torch.from_numpy(resample(ref, sr, MEL_SAMPLE_RATE).astype(np.float32))
    est_t = torch.from_numpy(resample(est, sr, MEL_SAMPLE_RATE).astype(np.float32))
    distances = []
    with torch.no_grad():
        for n_fft, n_mels in scales:
            log_ref = torch.log10(_mel_magnitude(ref_t, int(n_fft), int(n_mels)).clamp_min(1e-5))
            log_est = torch.log10(_mel_magnitude(est_t, int(n_fft), int(n_mels)).clamp_min(1e-5))
            distances.append(float((log_ref - log_est).abs().mean()))
    return float(np.mean(distances))


def _pitch_tracks(reference: ArrayLike, estimate: ArrayLike, sample_rate: int) -> tuple[torch.Tensor, ...]:
    """F0 and voicing per 10 ms of both signals (the centred analysis of `codec.analysis`, at 24 kHz)."""
    from codec.analysis import analyze

    ref, est = _pair(reference, estimate)
    sr = _check_rate(sample_rate)
    pair = np.stack([resample(ref, sr, MEL_SAMPLE_RATE), resample(est, sr, MEL_SAMPLE_RATE)])
    n = pair.shape[1] // 240 * 240
    if n == 0:
        raise MetricError("pitch needs at least 10 ms of audio")
    tracks = analyze(torch.from_numpy(pair[:, None, :n].astype(np.float32)), causal=False)
    return tracks.f0[0], tracks.voiced[0], tracks.f0[1], tracks.voiced[1]


def f0_error(reference: ArrayLike, estimate: ArrayLike, sample_rate: int) -> float:
    """Median absolute F0 difference in cents over the 10 ms steps voiced in both signals."""
    f0_ref, v_ref, f0_est, v_est = _pitch_tracks(reference, estimate, sample_rate)
    both = v_ref & v_est
    if not bool(both.any()):
        raise MetricError("no step is voiced in both signals")
    return float((1200 * torch.log2(f0_est[both] / f0_ref[both])).abs().median())


def vde(reference: ArrayLike, estimate: ArrayLike, sample_rate: int) -> float:
    """Voicing decision error: the share of 10 ms steps voiced in one signal but not the other."""
    _, v_ref, _, v_est = _pitch_tracks(reference, estimate, sample_rate)
    return float((v_ref != v_est).float().mean())


@functools.lru_cache(maxsize=1)
def _speaker_encoder() -> Any:
    resemblyzer = _require("resemblyzer", "resemblyzer", "speaker_similarity")
    # The weights ship inside the wheel; loading them is the slow part, so it happens once.
    return resemblyzer.VoiceEncoder(device="cpu", verbose=False)


def speaker_embedding(wav: ArrayLike, sample_rate: int) -> np.ndarray:
    """Unit-norm 256-d resemblyzer speaker embedding of a mono signal."""
    x = as_mono_array(wav, "wav")
    audio = _require("resemblyzer.audio", "resemblyzer", "speaker_similarity")
    x16 = resample(x, _check_rate(sample_rate), 16000).astype(np.float32)
    # Loudness-normalise but do not VAD-trim: trimming differently in the two signals
    # would compare different stretches of speech.
    x16 = audio.normalize_volume(x16, -30, increase_only=True)
    return np.asarray(_speaker_encoder().embed_utterance(x16), dtype=np.float64)


def speaker_similarity(reference: ArrayLike, estimate: ArrayLike, sample_rate: int) -> float:
    """Cosine similarity of resemblyzer speaker embeddings, in [-1, 1] (1: same voice)."""
    ref, est = _pair(reference, estimate)
    a, b = speaker_embedding(ref, sample_rate), speaker_embedding(est, sample_rate)
    denom = float(np.linalg.norm(a) * np.linalg.norm(b))
    if denom == 0.0:
        raise MetricError("speaker embedding is zero; the signal is probably silent")
    return float(np.dot(a, b) / denom)


# ------------------------------------------------------------------ speech recognition


@functools.lru_cache(maxsize=1)
def _sphinx_decoder() -> Any:
    pocketsphinx = _require("pocketsphinx", "pocketsphinx", "transcribe")
    # Default config = the US English acoustic model, dictionary and LM inside the wheel.
    return pocketsphinx.Decoder(samprate=16000, loglevel="FATAL")


def transcribe(wav: ArrayLike, sample_rate: int) -> str:
    """English transcript of a mono signal with pocketsphinx (lower-case words)."""
    x = resample(as_mono_array(wav, "wav"), _check_rate(sample_rate), 16000)
    pcm = (np.clip(x, -1.0, 1.0) * 32767.0).astype("<i2").tobytes()
    decoder = _sphinx_decoder()
    # Feature extraction (noise tracking, CMN) adapts across utterances; resetting it
    # makes a transcript depend on this signal only, so identical audio gets identical text.
    decoder.reinit_feat()
    decoder.start_utt()
    decoder.process_raw(pcm, no_search=False, full_utt=True)
    decoder.end_utt()
    hyp = decoder.hyp()
    return normalize_text(hyp.hypstr) if hyp is not None else ""


def normalize_text(text: str) -> str:
    """Lower-case, drop punctuation and collapse whitespace, for WER scoring.

    Apostrophes inside words are kept ("don't"); other punctuation becomes a space.
    """
    text = unicodedata.normalize("NFKC", text).lower()
    text = re.sub(r"[’‘`]", "'", text)
    text = re.sub(r"[^\w\s']|_", " ", text)
    text = re.sub(r"(?<!\w)'|'(?!\w)", " ", text)
    return " ".join(text.split())


def word_error_rate(reference_text: str, hypothesis_text: str) -> float:
    """WER of `hypothesis_text` against `reference_text` after `normalize_text`.

    (substitutions + deletions + insertions) / reference words; may exceed 1.
    An empty reference raises `MetricError` (the rate has no denominator).
    """
    jiwer = _require("jiwer", "jiwer", "word_error_rate")
    ref, hyp = normalize_text(reference_text), normalize_text(hypothesis_text)
    if not ref:
        raise MetricError("WER is undefined for an empty reference transcript")
    if not hyp:
        return 1.0
    return float(jiwer.wer(ref, hyp))


# -------------------------------------------------------------------------- scoring


@dataclass
class QualityScores:
    """Scores of one decoded signal against its reference; `None` = not computed.

    `errors` maps a metric name to the reason it could not be computed (its value is
    then `None`). `delay_samples` is the lag compensated before scoring, at the input
    rate (positive: the estimate lagged the reference).
    """

    pesq_wb: float | None = None
    pesq_nb: float | None = None
    stoi: float | None = None
    estoi: float | None = None
    si_sdr: float | None = None
    mel_distance: float | None = None
    f0_error: float | None = None
    vde: float | None = None
    speaker_similarity: float | None = None
    dwer: float | None = None
    reference_transcript: str | None = None
    estimate_transcript: str | None = None
    delay_samples: int = 0
    num_samples: int = 0
    errors: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def score_pair(
    reference: ArrayLike,
    estimate: ArrayLike,
    sample_rate: int,
    metrics: Sequence[str] = METRICS,
    *,
    max_delay_s: float = 0.25,
    reference_transcript: str | None = None,
    on_error: Literal["raise", "record"] = "raise",
) -> QualityScores:
    """Align `estimate` to `reference` and compute the selected `metrics` (see `METRICS`).

    Args:
        reference, estimate: mono signals `[N_ref]`, `[N_est]` at `sample_rate`; lengths
            may differ (the pair is trimmed by `align`).
        metrics: names from `METRICS`. `"dwer"` transcribes both signals with pocketsphinx
            (English only) and returns the WER of the decoded transcript against the
            original's; pass `reference_transcript` to reuse a transcript of the reference.
        max_delay_s: largest delay searched by the cross-correlation alignment.
        on_error: `"raise"` propagates `MetricError`; `"record"` stores its message in
            `QualityScores.errors` and leaves that metric `None` (missing packages and
            invalid input still raise).
    """
    unknown = [m for m in metrics if m not in METRICS]
    if unknown:
        raise ValueError(f"unknown metric(s) {unknown}; choose from {list(METRICS)}")
    if on_error not in ("raise", "record"):
        raise ValueError(f"on_error must be 'raise' or 'record', got {on_error!r}")
    sr = _check_rate(sample_rate)
    ref_full = as_mono_array(reference, "reference")
    est_full = as_mono_array(estimate, "estimate")
    delay = estimate_delay(ref_full, est_full, int(round(max_delay_s * sr)))
    ref, est = _apply_delay(ref_full, est_full, delay)
    scores = QualityScores(delay_samples=delay, num_samples=int(ref.size))

    functions = {
        "pesq_wb": lambda: pesq_wb(ref, est, sr),
        "pesq_nb": lambda: pesq_nb(ref, est, sr),
        "stoi": lambda: stoi(ref, est, sr),
        "estoi": lambda: estoi(ref, est, sr),
        "si_sdr": lambda: si_sdr(ref, est),
        "mel_distance": lambda: mel_distance(ref, est, sr),
        "f0_error": lambda: f0_error(ref, est, sr),
        "vde": lambda: vde(ref, est, sr),
        "speaker_similarity": lambda: speaker_similarity(ref, est, sr),
    }
    for name in METRICS:
        if name not in metrics:
            continue
        try:
            if name == "dwer":
                if reference_transcript is None:
                    reference_transcript = transcribe(ref_full, sr)
                scores.reference_transcript = reference_transcript
                scores.estimate_transcript = transcribe(est_full, sr)
                scores.dwer = word_error_rate(reference_transcript, scores.estimate_transcript)
            else:
                setattr(scores, name, functions[name]())
        except MetricError as exc:
            if on_error == "raise":
                raise
            scores.errors[name] = str(exc)
    return scores
