"""Benchmarks: classic-codec wrappers, output helpers, and each benchmark end to end."""

from __future__ import annotations

import json
import math
import shutil
import struct
import sys
from pathlib import Path

import audio_helpers
import numpy as np
import pytest
import soundfile as sf
import torch

import codec
from codec import metrics as M

# benchmarks/ holds scripts run from a checkout and is not installed with the package:
# import it from the repository root whichever way pytest was started.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from benchmarks import cli_memory, codec_quality, codec_speed, tts_eval, tts_finetune  # noqa: E402
from benchmarks import systems as B  # noqa: E402
from benchmarks.common import Panel, Series, markdown_table, save_plot, write_json  # noqa: E402

SR = 16000


def speechlike(seconds: float, seed: int = 0, sr: int = SR) -> np.ndarray:
    """The shared speech stand-in with a lower voice: 110 Hz, moving by 30 Hz."""
    return audio_helpers.speechlike(seconds, seed, sr, f0=110.0, vibrato=30.0)


@pytest.fixture(scope="module")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("tiny-codec")
    codec.HybridCodec(codec.CodecConfig.tiny()).save(folder)
    return folder


def require_tools(*tools: str) -> None:
    missing = [t for t in tools if shutil.which(t) is None]
    if missing:
        pytest.skip(f"Debian tool(s) {', '.join(missing)} not installed (apt-get install opus-tools codec2)")


# ------------------------------------------------------------------------- systems


def test_original_is_identity_with_pcm_bitrate() -> None:
    x = speechlike(0.5)
    out = B.Original().process(x, SR)
    np.testing.assert_array_equal(out.audio, x)
    assert out.bitrate_kbps == pytest.approx(256.0)


def _ogg_page(lacing: list[int], serial: int = 1, seq: int = 0) -> bytes:
    header = b"OggS" + bytes([0, 0]) + struct.pack("<qIII", 0, serial, seq, 0) + bytes([len(lacing)])
    return header + bytes(lacing) + b"\0" * sum(lacing)


def test_ogg_packet_sizes_follow_lacing_values() -> None:
    # Packet of 300 bytes spans lacing 255 + 45; a 255-byte packet needs a terminating 0;
    # a packet continued on the next page is joined.
    data = _ogg_page([19]) + _ogg_page([255, 45, 255, 0, 7, 255], seq=1) + _ogg_page([10], seq=2)
    assert B.ogg_packet_sizes(data) == [19, 300, 255, 7, 265]
    with pytest.raises(ValueError, match="not an Ogg page"):
        B.ogg_packet_sizes(b"RIFF" + data)


@pytest.mark.parametrize("kbps", [6, 8])
def test_opus_wrapper_length_and_bitrate(kbps: int) -> None:
    require_tools("opusenc", "opusdec")
    x = speechlike(2.0)
    out = B.Opus(kbps).process(x, SR)
    assert out.audio.shape == x.shape and out.audio.dtype == np.float32
    assert 0.6 * kbps < out.bitrate_kbps < 1.2 * kbps
    assert out.file_kbps > out.bitrate_kbps  # the container costs something
    scores = M.score_pair(x, out.audio, SR, ["stoi"])
    assert abs(scores.delay_samples) < SR * 0.005  # opusdec removes the pre-skip
    assert scores.stoi > 0.6


@pytest.mark.parametrize("mode", [3200, 1200])
def test_codec2_wrapper_length_bitrate_and_delay(mode: int) -> None:
    require_tools("c2enc", "c2dec")
    x = speechlike(2.0, sr=22050)
    out = B.Codec2(mode).process(x, 22050)
    assert out.audio.shape == x.shape
    assert out.bitrate_kbps == pytest.approx(mode / 1000, rel=0.05)
    assert out.file_kbps > out.bitrate_kbps
    # The wrapper removes the decoder's delay: shifting the output either way by 10 ms
    # makes it less intelligible against the input.
    shift = int(0.01 * 22050)
    as_is = M.stoi(x, out.audio, 22050)
    later = M.stoi(*M.align(x, np.concatenate([np.zeros(shift, np.float32), out.audio]), 0), 22050)
    earlier = M.stoi(*M.align(x[shift:], out.audio, 0), 22050)
    assert as_is > max(later, earlier) and as_is > 0.7


def test_missing_tool_is_a_clear_skip_reason(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(B.classic.shutil, "which", lambda tool: None)
    system = B.Opus(6)
    reason = system.unavailable_reason()
    assert reason is not None and "opusenc" in reason and "opus-tools" in reason
    with pytest.raises(B.SystemUnavailable, match="opus-tools"):
        system.process(speechlike(0.2), SR)
    assert "codec2" in B.Codec2(3200).unavailable_reason()


def test_build_baseline_names() -> None:
    assert [B.build_baseline(n).name for n in B.BASELINE_NAMES] == list(B.BASELINE_NAMES)
    for bad in ("opus-2k", "codec2-999", "mp3"):
        with pytest.raises(ValueError):
            B.build_baseline(bad)


def test_hylac_system_round_trip(tiny_model_dir: Path) -> None:
    system = B.Hylac(str(tiny_model_dir), name="tiny")
    x = speechlike(1.0)
    out = system.process(x, SR)
    assert out.audio.shape == x.shape and np.all(np.isfinite(out.audio))
    model = system.model
    frames = codec.num_frames(24000)  # 1 s at 24 kHz
    expected = frames * model.bitrate / model.frame_rate / 1000.0
    assert out.bitrate_kbps == pytest.approx(expected, rel=1e-6)
    assert system.nominal_kbps == pytest.approx(model.bitrate / 1000.0)


def test_hylac_system_missing_model_is_unavailable(tmp_path: Path) -> None:
    system = B.Hylac(str(tmp_path / "nope"))
    assert "cannot load codec model" in system.unavailable_reason()


class _HalfRate(B.Transform):
    """A quality row in one small class: 12 kHz band-limiting at 16 bits a sample, no model."""

    def transform(self, wav: np.ndarray) -> tuple[np.ndarray, float]:
        half = B.base.resample(wav, 24000, 12000)
        return B.base.resample(half, 12000, 24000), half.size * 16.0


class _Decoded(B.Transform):
    """A row driven by a codec model: its decoder on its own encoder's latents."""

    def transform(self, wav: np.ndarray) -> tuple[np.ndarray, float]:
        with torch.inference_mode():
            latents = self.model.encode(torch.from_numpy(wav), 24000)
            audio = self.model.decode(latents).reshape(-1).numpy()
        return audio, latents.num_frames * self.model.bitrate / self.model.frame_rate


def test_a_new_quality_row_is_one_small_class(tiny_model_dir: Path, tmp_path: Path) -> None:
    x = speechlike(1.0)
    out = _HalfRate("half rate").process(x, SR)
    assert out.audio.shape == x.shape and out.bitrate_kbps == pytest.approx(12000 * 16 / 1000, rel=1e-3)
    assert _HalfRate("half rate").unavailable_reason() is None
    row = _Decoded("decoded", model=str(tiny_model_dir))
    hylac = B.Hylac(str(tiny_model_dir)).process(x, SR)
    np.testing.assert_allclose(row.process(x, SR).audio, hylac.audio, atol=1e-5)  # the same function as Hylac
    missing = _Decoded("decoded", model=tmp_path / "nope")
    assert "decoded: cannot load codec model" in missing.unavailable_reason()
    clips = [codec_quality.Clip("c", tmp_path / "c.wav", x, SR, "en")]
    results, skipped = codec_quality.run_benchmark(clips, [_HalfRate("half rate"), missing], ["si_sdr"],
                                                   log=lambda _: None)
    assert [r.name for r in results] == ["half rate"] and set(skipped) == {"decoded"}


# -------------------------------------------------------------------- output helpers


def test_write_json_is_strict_and_table_is_checked(tmp_path: Path) -> None:
    path = write_json(tmp_path / "a" / "x.json", {"v": np.float32(1.5), "n": math.nan, "a": np.arange(2)})
    assert json.loads(path.read_text()) == {"v": 1.5, "n": None, "a": [0, 1]}
    assert markdown_table(["a", "b"], [["1", "2"]]).splitlines()[1] == "| :-- | --: |"
    with pytest.raises(ValueError):
        markdown_table(["a", "b"], [["1"]])
    png = save_plot(tmp_path / "p.png", [Panel("t", "x", "y", [Series("s", [1.0, 2.0], [3.0, math.nan])])])
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


# ------------------------------------------------------------------ quality, end to end


def _write_clips(folder: Path) -> None:
    folder.mkdir(parents=True)
    sf.write(folder / "a.wav", speechlike(1.5, seed=1), 16000)
    sf.write(folder / "b.flac", speechlike(1.5, seed=2, sr=22050), 22050)


def test_codec_quality_end_to_end(tmp_path: Path, tiny_model_dir: Path) -> None:
    data, out = tmp_path / "clips", tmp_path / "results"
    _write_clips(data)
    systems = ["original"] + (["codec2-3200"] if shutil.which("c2enc") and shutil.which("c2dec") else [])
    rc = codec_quality.main([
        "--data", str(data), "--model", str(tiny_model_dir), str(tmp_path / "missing-model"),
        "--systems", *systems, "--metrics", "pesq_wb", "stoi", "si_sdr", "mel_distance",
        "--int8", "--out", str(out),
    ])
    assert rc == 0
    result = json.loads((out / "codec_quality.json").read_text())
    names = [s["name"] for s in result["systems"]]
    assert names == [tiny_model_dir.name, f"{tiny_model_dir.name} int8", *systems]
    assert "missing-model" in result["skipped"] and "missing-model int8" in result["skipped"]
    float_row, int8_row = result["systems"][:2]
    assert int8_row["means"]["stoi"] == pytest.approx(float_row["means"]["stoi"], abs=0.05)
    assert int8_row["means"]["mel_distance"] != float_row["means"]["mel_distance"]
    assert result["environment"]["torch"] == torch.__version__
    for system in result["systems"]:
        assert system["num_clips"] == 2 and len(system["clips"]) == 2
        assert system["kbps"] > 0
    original = result["systems"][names.index("original")]
    assert original["means"]["pesq_wb"] == pytest.approx(4.64, abs=0.01)
    assert original["means"]["stoi"] == pytest.approx(1.0, abs=1e-6)
    hylac = result["systems"][0]
    assert hylac["kbps"] == pytest.approx(2.14, abs=0.3)  # short clips round up to whole frames
    assert hylac["means"]["pesq_wb"] < original["means"]["pesq_wb"]  # untrained: far from the top
    md = (out / "codec_quality.md").read_text()
    assert "| system | kbps | PESQ-WB | STOI | SI-SDR (dB) | mel |" in md
    assert md.count("\n| original |") == 1
    assert (out / "codec_quality.png").read_bytes()[:4] == b"\x89PNG"


def test_codec_quality_manifest_with_dwer(tmp_path: Path) -> None:
    clips = tmp_path / "corpus" / "wavs"
    _write_clips(clips)
    manifest = tmp_path / "corpus" / "test.jsonl"
    manifest.write_text(
        json.dumps({"path": "wavs/a.wav", "text": "hello", "lang": "en"}) + "\n"
        + json.dumps({"path": "wavs/b.flac", "text": "bonjour", "lang": "fr"}) + "\n"
    )
    loaded = codec_quality.gather_clips([str(manifest)], "en", None, None)
    assert [c.lang for c in loaded] == ["en", "fr"] and loaded[1].sample_rate == 22050
    results, skipped = codec_quality.run_benchmark(loaded, [B.Original()], ["si_sdr", "dwer"], log=lambda _: None)
    rows = results[0].clips
    # dWER only for the English clip; an identical signal gives the same transcript.
    assert rows[1]["dwer"] is None and rows[1]["reference_transcript"] is None
    assert rows[0]["estimate_transcript"] == rows[0]["reference_transcript"]
    if rows[0]["reference_transcript"]:
        assert rows[0]["dwer"] == 0.0
    else:  # no words recognised in the synthetic clip: recorded, not crashed
        assert rows[0]["dwer"] is None and "empty reference" in rows[0]["errors"]["dwer"]
    assert not skipped


def test_max_clips_spreads_the_selection(tmp_path: Path) -> None:
    folder = tmp_path / "many"
    folder.mkdir()
    for i in range(9):
        sf.write(folder / f"c{i}.wav", speechlike(0.1, seed=i), SR)
    picked = codec_quality.gather_clips([str(folder)], "en", 3, None)
    assert [c.path.name for c in picked] == ["c0.wav", "c4.wav", "c8.wav"]
    assert len(codec_quality.gather_clips([str(folder)], "en", 0, None)) == 9


def test_codec_quality_without_data_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="--data"):
        codec_quality.gather_clips([str(tmp_path / "nothing")], "en", None, None)
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="no test clips"):
        codec_quality.gather_clips([str(tmp_path / "empty")], "en", None, None)


# -------------------------------------------------------------------- speed, end to end


def test_speed_ratios_are_per_setting() -> None:
    def r(system: str, threads: int, enc: float, dec: float) -> codec_speed.ThroughputResult:
        return codec_speed.ThroughputResult(system, "cpu", threads, 1, 10.0, enc, dec, enc + dec)

    results = [r("ours", 1, 1.0, 1.0), r("ours", 2, 0.5, 0.5), r("mimi", 1, 10.0, 30.0), r("mimi", 2, 6.0, 4.0)]
    ratios = {x["threads"]: x for x in codec_speed.speed_ratios(results, "ours")}
    assert ratios[1]["encode"] == 10.0 and ratios[1]["decode"] == 30.0 and ratios[1]["encode_decode"] == 20.0
    assert ratios[2]["encode_decode"] == 10.0
    assert results[0].rtf("encode_decode") == pytest.approx(0.2)


def test_peak_rss_of_a_child_process() -> None:
    rss, wall, rc, _ = cli_memory.run_with_peak_rss(
        [sys.executable, "-c", "b = bytearray(300 * 1024 * 1024); b[::4096] = b'x' * len(b[::4096])"]
    )
    assert rc == 0 and wall > 0
    assert 300 < rss < 1000


def test_codec_speed_end_to_end(tmp_path: Path, tiny_model_dir: Path) -> None:
    out = tmp_path / "results"
    rc = codec_speed.main([
        "--model", str(tiny_model_dir), "--systems", "hylac", "encodec", "--seconds", "0.25",
        "--batch-sizes", "1", "2", "--threads", "1", "--warmup", "1", "--repeats", "1",
        "--stream-frames", "5", "--memory-seconds", "0", "--devices", "cpu", "--out", str(out),
    ])
    assert rc == 0
    result = json.loads((out / "codec_speed.json").read_text())
    name = tiny_model_dir.name
    systems = (name, f"{name} int8", "encodec")
    assert {(t["system"], t["batch"]) for t in result["throughput"]} == {(s, b) for s in systems for b in (1, 2)}
    for t in result["throughput"]:
        assert t["encode_s"] > 0 and t["decode_s"] > 0
        assert t["rtf_encode_decode"] == pytest.approx(t["encode_decode_s"] / (t["batch"] * 0.25))
    assert {(x["system"], x["relative_to"]) for x in result["ratios"]} == {("encodec", name), (f"{name} int8", name)}
    streams = {s["system"]: s for s in result["streaming"]}
    assert set(streams) == {name, f"{name} traced", f"{name} int8", f"{name} int8 traced"}
    for stream in streams.values():
        assert stream["frames"] == 5 and stream["p99_ms"] >= stream["p50_ms"] > 0
    assert "trace_frames=1" in streams[f"{name} int8 traced"]["note"] and "int8" in streams[f"{name} int8"]["note"]
    targets = {t["target"].split(" streaming p99")[0]: t for t in result["targets"] if " streaming p99" in t["target"]}
    assert set(targets) == set(streams)
    for system, target in targets.items():
        assert target["value"] == streams[system]["p99_ms"]
        assert target["met"] == (streams[system]["p99_ms"] < target["goal"])
    md = (out / "codec_speed.md").read_text()
    assert "## Throughput" in md and "## Streaming" in md and "time / " + name in md
    assert (out / "codec_speed.png").read_bytes()[:4] == b"\x89PNG"


def test_every_streaming_system_takes_the_variant_argument() -> None:
    import inspect

    streaming = [cls for cls in (B.Hylac, *B.PEERS.values()) if cls.streams]
    assert {cls.__name__ for cls in streaming} == {"Hylac", "Mimi"}
    assert all(issubclass(cls, B.System) for cls in streaming)  # one hierarchy: quality and speed
    for cls in streaming:
        assert "variant" in inspect.signature(cls.stream).parameters, cls.__name__


def test_codec_speed_cuda_without_cuda_is_a_clear_error(capsys: pytest.CaptureFixture[str]) -> None:
    if torch.cuda.is_available():
        pytest.skip("CUDA is available here")
    with pytest.raises(SystemExit) as exc:
        codec_speed.main(["--devices", "cuda", "--systems", "hylac"])
    assert exc.value.code == 2
    assert "--devices cuda: CUDA is not available" in capsys.readouterr().err


def test_rtf_keeps_three_significant_digits() -> None:
    assert [codec_speed._rtf(x) for x in (4.523, 0.01523, 0.0001364)] == ["4.52", "0.0152", "0.000136"]
    assert codec_speed._rtf(math.nan) == "–"


@pytest.mark.slow
def test_memory_through_the_cli(tmp_path: Path, tiny_model_dir: Path) -> None:
    if cli_memory.cli_command() is None:
        pytest.skip("the codec CLI (codec.cli) is not installed")
    results, reason = cli_memory.measure_memory(str(tiny_model_dir), 5.0, tmp_path)
    assert reason is None
    assert [m.command for m in results] == ["hylac-codec encode", "hylac-codec decode"]
    for m in results:
        assert m.returncode == 0, m.error
        assert 50 < m.peak_rss_mb < 4000
    decoded, sr = sf.read(tmp_path / "long.decoded.wav")
    assert decoded.shape[0] == 5 * sr


@pytest.mark.slow
def test_mimi_streaming_latency() -> None:
    subject = B.Mimi()
    result = codec_speed.measure_streaming(subject, num_frames=3, warmup=1)
    assert result.frames == 3 and result.p50_ms > 0 and "decoder" in result.note


@pytest.mark.slow
def test_tts_eval_quick_end_to_end(tmp_path: Path) -> None:
    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng is not installed (quick mode speaks its corpus with it)")
    out = tmp_path / "results"
    assert tts_eval.main(["--quick", "--out", str(out), "--threads", "1"]) == 0
    result = json.loads((out / "tts_eval.json").read_text())
    # Everyday sentences with the real prompt: hylac-tts, then Piper and espeak-ng in the same run.
    hylac, piper, espeak = result["everyday"]
    assert piper["name"].startswith("Piper") and espeak["name"] == "espeak-ng"
    for row in (hylac, piper, espeak):
        if row["note"].startswith("not run"):  # Piper without piper-tts: the row says why
            assert row is piper and row["wer"] is None
            continue
        assert row["sentences"] == 2 and 0.0 <= row["wer"] <= 2.0 and -1.0 <= row["similarity"] <= 1.0
        assert row["per"] is not None and row["mean_seconds"] > 0
    assert hylac["ttfa_ms"] > 0 and hylac["rtf"] > 0 and hylac["length_limit_hits"] <= 2
    refs = result["references"]
    assert refs["same_pairs"] == 10 and refs["real_clips"] == 5  # the five LibriVox clips
    assert refs["different_speakers"] is not None or "skipped" in refs["note"]
    # Corpus ground truth and the codec ceiling.
    gt = result["ground_truth"]
    assert gt["sentences"] == 2 and result["corpus_tts"]["sentences"] == 2
    for key in ("wer", "codec_round_trip_wer"):
        assert 0.0 <= gt[key] <= 2.0
    assert -1.0 <= gt["codec_round_trip_speaker_similarity"] <= 1.0
    # Every language: corpus sentences where the quick corpus has them, fixed ones elsewhere;
    # the quick codec has a phoneme head, so every PER is measured.
    langs = {r["lang"]: r for r in result["languages"]}
    assert list(langs) == list(codec.LANGUAGES) and result["phoneme_note"] is None
    assert {k for k, r in langs.items() if r["source"] == "corpus test"} == {"en", "fr", "de"}
    for r in langs.values():
        assert r["mean_seconds"] > 0 and r["expected_seconds"] > 0 and r["per"] is not None
        assert (r["ground_truth_per"] is not None) == (r["source"] == "corpus test")
    # Training curve: a training checkpoint (exported on the fly) and an exported model folder.
    assert [p["step"] for p in result["curve"]] == [1, 2]
    assert all(p["wer"] is not None and p["similarity"] is not None for p in result["curve"])
    assert {(p["steps"], p["cfg"]) for p in result["sweep"]} == {
        (1, 1.2), (2, 1.2), (4, 1.2), (8, 1.2), (16, 1.2), (8, 1.0), (8, 2.0)}
    checks = {t["name"]: t for t in result["target_checks"]}
    assert checks["Phoneme error rates reported"]["met"] is True
    assert checks["Time to first audio, 1 CPU threads"]["goal"] == "≤ 150 ms"
    md = (out / "tts_eval.md").read_text()
    for heading in ("## Targets", "## Everyday English", "## Ground truth and the codec ceiling", "## Languages",
                    "## Sampler sweep", "## Training curve"):
        assert heading in md
    assert "espeak-ng" in md and "Piper" in md and "recordings through the codec" in md
    assert (out / "tts_eval.png").read_bytes()[:4] == b"\x89PNG"


def _voice_manifest(folder: Path) -> Path:
    """Ten clips of a new speaker ``new`` (a 1.2-4.8 s speech stand-in each) and two of another
    real speaker, as a corpus manifest."""
    lines = []
    for i in range(12):
        speaker = "new" if i < 10 else "asterisk-other"
        seconds = 1.2 + 0.4 * i if i < 10 else 2.0
        path = folder / f"{speaker}-{i}.wav"
        sf.write(str(path), speechlike(seconds, seed=i), SR)
        lines.append(json.dumps({"path": path.name, "text": f"We walked home number {i}.", "lang": "en",
                                 "speaker": speaker, "duration": seconds,
                                 "source": "asterisk" if i >= 10 else "recorded"}))
    manifest = folder / "manifest.jsonl"
    manifest.write_text("\n".join(lines) + "\n")
    return manifest


@pytest.mark.slow
def test_tts_finetune_bench_end_to_end(tmp_path: Path, tiny_tts_dir: Path) -> None:
    manifest = _voice_manifest(tmp_path)
    out = tmp_path / "results"
    args = ["--model", str(tiny_tts_dir), "--manifest", str(manifest), "--speaker", "new", "--minutes", "1",
            "--test", "2", "--english", "1", "--steps", "2", "4", "--batch-size", "2", "--lr", "1e-3",
            "--threads", "1", "--max-seconds", "2", "--work", str(tmp_path / "work"), "--out", str(out)]
    assert tts_finetune.main(args) == 0
    result = json.loads((out / "tts_finetune.json").read_text())
    assert [p["step"] for p in result["points"]] == [0, 2, 4]
    first, *tuned = result["points"]
    assert first["cpu_minutes"] == 0.0 and all(p["cpu_minutes"] > 0 for p in tuned)
    assert tuned[1]["wall_minutes"] > tuned[0]["wall_minutes"]  # the second run resumed the first
    for p in result["points"]:
        assert len(p["clips"]) == 3 and sum(c["english"] for c in p["clips"]) == 1
        assert p["similarity"] is None or -1.0 <= p["similarity"] <= 1.0
    # Held out: the test sentences and the prompt are not among the clips fine-tuned on.
    train = [json.loads(line)["path"] for line in (tmp_path / "work" / "data.jsonl").read_text().splitlines()]
    assert not set(train) & set(result["test"]) and result["prompt"] not in train and len(train) == result["train_clips"]
    bars = result["bars"]
    assert 0.0 < bars["same_speaker"] <= 1.0 and bars["other_speakers"] == ["asterisk-other"]
    md = (out / "tts_finetune.md").read_text()
    assert "Target (similarity above zero-shot" in md and (out / "tts_finetune.png").is_file()
    # A speaker the manifest does not have is refused with the reason, and nothing is written.
    assert tts_finetune.main([*args[:5], "nobody", *args[6:-1], str(tmp_path / "none")]) == 2
    assert not (tmp_path / "none").exists()


def test_tts_eval_phoneme_error_rate_and_missing_head(tmp_path: Path) -> None:
    from benchmarks.tts_bench import scoring
    from codec.training.phonemes import NUM_PHONEMES, WORD_BOUNDARY_ID

    assert scoring.edit_distance([1, 2, 3], [1, 3]) == 1 and scoring.edit_distance([], [4, 5]) == 2
    assert scoring.edit_distance([7, 8], [8, 7]) == 2
    assert scoring.total_per([scoring.PhonemeScore(1, 4, "", ""), scoring.PhonemeScore(3, 4, "", "")]) == 0.5
    torch.manual_seed(0)
    plain = scoring.PhonemeReader(codec.HybridCodec(codec.CodecConfig.tiny()))
    assert "no phoneme head" in plain.reason
    with_head = scoring.PhonemeReader(codec.HybridCodec(codec.CodecConfig.tiny(
        phoneme_upsample=2, phoneme_classes=NUM_PHONEMES)).eval())
    assert with_head.reason is None
    ids = with_head.read(speechlike(1.0), SR)
    assert all(isinstance(i, int) and i != WORD_BOUNDARY_ID for i in ids)
    # Word boundaries are not phonemes: the reference has none either.
    assert WORD_BOUNDARY_ID not in scoring.PhonemeReader.reference("Hello world", "en")


def test_tts_eval_checkpoint_steps_and_fixed_sentences(tmp_path: Path) -> None:
    from benchmarks.tts_bench import curve, data

    assert curve.checkpoint_step(tmp_path / "step_0000250") == 250
    exported = tmp_path / "model"
    exported.mkdir()
    assert curve.checkpoint_step(exported) is None
    (exported / "README.md").write_text("A 4.19 M model.\n\n7 000 steps at batch 16.\n")
    assert curve.checkpoint_step(exported) == 7000
    fixed = data.language_sentences(tmp_path / "missing.jsonl", "test", "hi", 3)
    assert [s.text for s in fixed] == list(data.FIXED_SENTENCES["hi"]) and fixed[0].recording is None
    assert set(data.FIXED_SENTENCES) == set(codec.LANGUAGES)
    assert len(data.everyday_sentences()) == 30


# ----------------------------------------------------------------- decoder ceiling
