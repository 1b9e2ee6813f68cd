"""codec.metrics on known cases: identity, delay, noise, bad input, word error rate."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from audio_helpers import speechlike

from codec import metrics as M

SR = 16000


def noisy(x: np.ndarray, snr_db: float, seed: int = 1) -> np.ndarray:
    noise = np.random.default_rng(seed).standard_normal(x.size)
    noise *= np.sqrt(np.mean(x.astype(np.float64) ** 2) / np.mean(noise**2) / 10 ** (snr_db / 10))
    return (x + noise).astype(np.float32)


@pytest.fixture(scope="module")
def clip() -> np.ndarray:
    return speechlike(3.0)


# ------------------------------------------------------------------------ identity


def test_identical_signals_score_at_the_top(clip: np.ndarray) -> None:
    assert M.pesq_wb(clip, clip, SR) == pytest.approx(4.64, abs=0.01)
    assert M.pesq_nb(clip, clip, SR) == pytest.approx(4.55, abs=0.01)
    assert M.stoi(clip, clip, SR) == pytest.approx(1.0, abs=1e-6)
    assert M.estoi(clip, clip, SR) == pytest.approx(1.0, abs=1e-6)
    assert M.si_sdr(clip, clip) > 150.0
    assert M.mel_distance(clip, clip, SR) == pytest.approx(0.0, abs=1e-6)


def test_torch_and_numpy_inputs_agree(clip: np.ndarray) -> None:
    est = noisy(clip, 10.0)
    as_tensor = M.si_sdr(torch.from_numpy(clip)[None], torch.from_numpy(est)[None, None])
    assert as_tensor == pytest.approx(M.si_sdr(clip, est), abs=1e-9)
    assert M.mel_distance(torch.from_numpy(clip), est, SR) == pytest.approx(
        M.mel_distance(clip, est, SR), abs=1e-6
    )


def test_other_rates_are_resampled() -> None:
    x24 = speechlike(2.0, sr=24000)
    assert M.pesq_wb(x24, x24, 24000) == pytest.approx(4.64, abs=0.01)
    assert M.stoi(x24, x24, 24000) == pytest.approx(1.0, abs=1e-6)


# --------------------------------------------------------------------------- noise


def test_si_sdr_matches_the_snr_of_added_white_noise(clip: np.ndarray) -> None:
    for snr in (0.0, 10.0, 20.0):
        assert M.si_sdr(clip, noisy(clip, snr)) == pytest.approx(snr, abs=0.3)


def test_si_sdr_is_scale_invariant(clip: np.ndarray) -> None:
    est = noisy(clip, 5.0)
    assert M.si_sdr(clip, 0.1 * est) == pytest.approx(M.si_sdr(clip, est), abs=1e-6)


def test_noise_lowers_every_score(clip: np.ndarray) -> None:
    mild, strong = noisy(clip, 20.0), noisy(clip, 0.0)
    for metric in (M.pesq_wb, M.pesq_nb, M.stoi, M.estoi):
        top, a, b = metric(clip, clip, SR), metric(clip, mild, SR), metric(clip, strong, SR)
        assert top > a > b, metric.__name__
    assert 0 < M.mel_distance(clip, mild, SR) < M.mel_distance(clip, strong, SR)
    assert M.pesq_wb(clip, strong, SR) < 2.0


# ----------------------------------------------------------------------- alignment


@pytest.mark.parametrize("delay", [37, -25, 0])
def test_estimate_delay_finds_the_shift(clip: np.ndarray, delay: int) -> None:
    shifted = np.roll(clip, delay)
    assert M.estimate_delay(clip, shifted, 400) == delay


def test_align_returns_equal_length_matching_signals(clip: np.ndarray) -> None:
    delayed = np.concatenate([np.zeros(160, np.float32), clip])  # 10 ms late, longer
    ref, est = M.align(clip, delayed, max_delay_samples=800)
    assert ref.shape == est.shape
    np.testing.assert_allclose(ref, est, atol=1e-7)


def test_delayed_copy_is_aligned_before_scoring(clip: np.ndarray) -> None:
    delayed = np.concatenate([np.zeros(240, np.float32), clip])[: clip.size]  # 15 ms late
    naive = M.si_sdr(clip, delayed)
    scores = M.score_pair(clip, delayed, SR, ["pesq_wb", "stoi", "si_sdr", "mel_distance"])
    assert scores.delay_samples == 240
    assert scores.num_samples == clip.size - 240
    assert naive < 0.0 < 100.0 < scores.si_sdr
    assert scores.pesq_wb == pytest.approx(4.64, abs=0.01)
    assert scores.stoi > 0.999
    assert scores.mel_distance < 1e-3


def test_max_delay_bounds_the_search(clip: np.ndarray) -> None:
    late = np.roll(clip, 500)
    assert M.estimate_delay(clip, late, 100) != 500
    assert M.estimate_delay(clip, late, 600) == 500


# ------------------------------------------------------------------------ bad input


@pytest.mark.parametrize(
    "bad, message",
    [
        (np.zeros(0, np.float32), "empty"),
        (np.array([0.1, np.nan, 0.2], np.float32), "NaN"),
        (np.array([0.1, np.inf, 0.2], np.float32), "NaN or Inf"),
        (np.zeros((2, 100), np.float32), "mono"),
    ],
)
def test_bad_input_is_a_clear_error(bad: np.ndarray, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        M.si_sdr(bad, bad)
    with pytest.raises(ValueError, match=message):
        M.score_pair(bad, bad, SR, ["si_sdr"])


def test_length_mismatch_and_unknown_metric_are_errors(clip: np.ndarray) -> None:
    with pytest.raises(ValueError, match="differ in length"):
        M.stoi(clip, clip[:-10], SR)
    with pytest.raises(ValueError, match="unknown metric"):
        M.score_pair(clip, clip, SR, ["pesq_wideband"])
    with pytest.raises(ValueError, match="sample_rate"):
        M.pesq_wb(clip, clip, 0)


def test_silent_reference_is_recorded_not_crashing(clip: np.ndarray) -> None:
    silent = np.zeros_like(clip)
    with pytest.raises(M.MetricError):
        M.si_sdr(silent, clip)
    scores = M.score_pair(silent, clip, SR, ["si_sdr", "mel_distance"], on_error="record")
    assert scores.si_sdr is None and "si_sdr" in scores.errors
    assert scores.mel_distance is not None


# ------------------------------------------------------------- word error rate / ASR


def test_word_error_rate_on_known_strings() -> None:
    assert M.word_error_rate("the cat sat on the mat", "the cat sat on a mat") == pytest.approx(1 / 6)
    assert M.word_error_rate("the cat sat", "the cat sat down there") == pytest.approx(2 / 3)
    assert M.word_error_rate("Hello, World!", "hello world") == 0.0
    assert M.word_error_rate("don't stop", "dont stop") == pytest.approx(0.5)
    assert M.word_error_rate("one two", "") == 1.0
    with pytest.raises(M.MetricError, match="empty reference"):
        M.word_error_rate(" ... ", "words")


def test_normalize_text() -> None:
    assert M.normalize_text("  It's  A—TEST, ‘quoted’.\n") == "it's a test quoted"


def _mbrola_clip(tmp: Path, text: str, voice: str) -> np.ndarray | None:
    if shutil.which("espeak-ng") is None:
        return None
    path = tmp / f"{voice}.wav"
    result = subprocess.run(["espeak-ng", "-v", voice, "-w", str(path), text], capture_output=True)
    if result.returncode != 0 or not path.exists() or path.stat().st_size < 1000:
        return None
    audio, sr = sf.read(path, dtype="float32")
    return M.resample(audio.astype(np.float64), sr, SR).astype(np.float32)


@pytest.mark.slow
def test_transcribe_and_speaker_similarity(tmp_path: Path) -> None:
    text = "the quick brown fox jumps over the lazy dog"
    speech = _mbrola_clip(tmp_path, text, "mb-us1")
    other = _mbrola_clip(tmp_path, "she sells sea shells by the sea shore", "mb-us2")
    if speech is None or other is None:
        pytest.skip("espeak-ng with the MBROLA voices mb-us1 and mb-us2 is not installed")
    first = M.transcribe(speech, SR)
    M.transcribe(other, SR)
    # Deterministic: decoding another utterance in between does not change the text.
    assert M.transcribe(speech, SR) == first
    assert M.word_error_rate(text, first) < 0.5

    scores = M.score_pair(speech, speech, SR, ["dwer", "speaker_similarity"])
    assert scores.dwer == 0.0 and scores.reference_transcript == first
    assert scores.speaker_similarity == pytest.approx(1.0, abs=1e-4)
    degraded = noisy(speech, 0.0)
    assert M.speaker_similarity(speech, degraded, SR) < 0.99
    length = min(speech.size, other.size)
    assert M.speaker_similarity(speech[:length], other[:length], SR) < 0.95


def test_missing_eval_package_names_the_extra(monkeypatch: pytest.MonkeyPatch, clip: np.ndarray) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "pystoi", None)  # makes `import pystoi` fail
    with pytest.raises(ImportError, match=r"'pystoi'.*hylac\[eval\]"):
        M.stoi(clip, clip, SR)


# ------------------------------------------------------------------------ pitch
def test_pitch_metrics_see_a_transposition_and_a_whisper() -> None:
    low = speechlike(2.0, f0=120.0)
    high = speechlike(2.0, f0=120.0 * 2 ** (1 / 12))  # one semitone up: 100 cents
    assert M.f0_error(low, low, SR) == pytest.approx(0.0, abs=1e-3)
    assert M.vde(low, low, SR) == 0.0
    assert M.f0_error(low, high, SR) == pytest.approx(100.0, abs=10.0)
    # The same envelope over noise: voiced steps of the reference lose their voicing.
    whisper = (np.abs(low) * np.random.default_rng(3).standard_normal(low.size)).astype(np.float32)
    assert M.vde(low, whisper, SR) > 0.3
    with pytest.raises(M.MetricError, match="voiced in both"):
        M.f0_error(low, np.zeros_like(low), SR)
    scores = M.score_pair(low, high, SR, ["f0_error", "vde"])
    assert scores.f0_error == pytest.approx(100.0, abs=10.0) and 0.0 <= scores.vde <= 1.0
