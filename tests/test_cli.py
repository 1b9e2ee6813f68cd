"""hylac-codec: every command, every bad input, batching, resumable and sharded manifest encoding."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

import codec
from codec import ExitCode
from codec.cli import commands
from codec.cli.encode_manifest import encode_manifest
from codec.cli.jobs import RunOptions
from codec.cli.main import build_parser
from codec.cli.main import main as cli_main
from codec.io.latent_file import CodecStamp, load_latents, read_latent_info, save_latents
from codec.latents import SAMPLE_RATE

SCRIPT = Path(sys.executable).with_name("hylac-codec")


def speech_like(seconds: float, rate: int, seed: int = 0) -> np.ndarray:
    """Harmonics of a gliding pitch, gated at a syllable rate, plus a little noise: ``[N]`` float32."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * rate)) / rate
    f0 = 110 + 40 * np.sin(2 * np.pi * 0.5 * t + seed)
    phase = 2 * np.pi * np.cumsum(f0) / rate
    voiced = sum(np.sin(k * phase) / k for k in range(1, 8))
    envelope = np.clip(np.sin(2 * np.pi * 3.3 * t), 0, None) ** 2
    return (0.2 * voiced * envelope + 0.01 * rng.standard_normal(len(t))).astype(np.float32)


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.manual_seed(0)
    return codec.HybridCodec(codec.CodecConfig.tiny()).eval().save(tmp_path_factory.mktemp("model") / "tiny")


@pytest.fixture(scope="module")
def model(model_dir: Path) -> codec.HybridCodec:
    return codec.load(model_dir)


@pytest.fixture
def run(model_dir: Path, capsys: pytest.CaptureFixture[str]):
    """Call ``main`` in-process with the test model; returns ``(exit code, stdout, stderr)``."""

    def _run(*args: str | Path, model: bool = True) -> tuple[int, str, str]:
        argv = [str(a) for a in args]
        if model and argv[0] != "info":
            argv += ["--model", str(model_dir)]
        code = cli_main(argv)
        out, err = capsys.readouterr()
        return code, out, err

    return _run


def files_under(folder: Path) -> list[str]:
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()) if folder.exists() else []


# --------------------------------------------------------------------------- commands


def test_encode_info_decode_a_folder(run, tmp_path: Path) -> None:
    (tmp_path / "in" / "sub").mkdir(parents=True)
    sf.write(tmp_path / "in" / "a.wav", speech_like(1.3, SAMPLE_RATE), SAMPLE_RATE)
    stereo = np.stack([speech_like(1.1, 44100, 1), speech_like(1.1, 44100, 2)], axis=1)
    sf.write(tmp_path / "in" / "sub" / "b.flac", stereo, 44100)
    sf.write(tmp_path / "in" / "sub" / "c.mp3", speech_like(0.9, 16000, 3), 16000)
    (tmp_path / "in" / "notes.txt").write_text("not picked up: not an audio extension")

    code, out, err = run("encode", tmp_path / "in", "-o", tmp_path / "lat")
    assert code == ExitCode.OK, err
    assert files_under(tmp_path / "lat") == ["a.hylat", "sub/b.hylat", "sub/c.hylat"]
    assert "44100 Hz with 2 channel(s) are resampled 44100 Hz -> 24000 Hz and down-mixed" in err
    info = read_latent_info(tmp_path / "lat" / "sub" / "b.hylat")
    assert (info.channels, info.original_sample_rate) == (2, 44100)

    code, out, _ = run("info", tmp_path / "lat" / "a.hylat")
    assert code == 0
    for text in ("format version   1", "codec            hylac-test", "frames           17 at 12.5 Hz", "bit/s"):
        assert text in out
    code, out, _ = run("info", tmp_path / "lat" / "a.hylat", "--json")
    assert json.loads(out)["num_samples"] == int(1.3 * SAMPLE_RATE)

    code, _, err = run("decode", tmp_path / "lat", "-o", tmp_path / "dec")
    assert code == ExitCode.OK, err
    assert files_under(tmp_path / "dec") == ["a.wav", "sub/b.wav", "sub/c.wav"]
    assert sf.info(str(tmp_path / "dec" / "a.wav")).frames == int(1.3 * SAMPLE_RATE)
    assert sf.info(str(tmp_path / "dec" / "sub" / "b.wav")).frames == round(int(1.1 * 44100) * SAMPLE_RATE / 44100)
    assert sf.info(str(tmp_path / "dec" / "sub" / "b.wav")).samplerate == SAMPLE_RATE


def test_default_outputs_go_beside_inputs_without_touching_them(run, tmp_path: Path) -> None:
    src = tmp_path / "talk.wav"
    sf.write(src, speech_like(0.5, SAMPLE_RATE), SAMPLE_RATE)
    original = src.read_bytes()
    assert run("encode", src)[0] == 0 and (tmp_path / "talk.hylat").is_file()
    assert run("decode", tmp_path / "talk.hylat")[0] == 0
    assert src.read_bytes() == original
    assert sf.info(str(tmp_path / "talk.decoded.wav")).frames == len(sf.read(src)[0])


def test_roundtrip_reports_bitrate_and_metrics(run, model: codec.HybridCodec, tmp_path: Path) -> None:
    src = tmp_path / "r.wav"
    sf.write(src, speech_like(3.0, SAMPLE_RATE), SAMPLE_RATE)
    code, out, err = run("roundtrip", src, "--metrics")
    assert code == 0, err
    assert f"{model.bitrate:.0f} bit/s" in out and "38 frames" in out
    assert "PESQ-WB" in out and "STOI" in out
    assert sf.info(str(tmp_path / "r.roundtrip.wav")).frames == 3 * SAMPLE_RATE


def test_batched_files_equal_one_by_one(run, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_path / "many"
    folder.mkdir()
    for i, seconds in enumerate([0.3, 0.9, 0.08, 0.5, 1.2]):
        sf.write(folder / f"f{i}.wav", speech_like(seconds, SAMPLE_RATE, seed=i), SAMPLE_RATE)
    batch_sizes: list[int] = []
    encode_batch, decode_batch = commands.encode_batch, commands.decode_batch
    monkeypatch.setattr(commands, "encode_batch", lambda m, s: batch_sizes.append(len(s)) or encode_batch(m, s))
    monkeypatch.setattr(commands, "decode_batch", lambda m, s: batch_sizes.append(len(s)) or decode_batch(m, s))
    assert run("encode", folder, "-o", tmp_path / "one")[0] == 0
    assert batch_sizes == []
    assert run("encode", folder, "-o", tmp_path / "batch", "--batch-size", "4")[0] == 0
    assert batch_sizes == [4, 1]
    for name in files_under(tmp_path / "one"):
        a, _ = load_latents(tmp_path / "one" / name)
        b, _ = load_latents(tmp_path / "batch" / name)
        assert a.num_samples == b.num_samples
        assert torch.equal(a.semantic, b.semantic) and torch.equal(a.acoustic_codes, b.acoustic_codes)
    assert run("decode", tmp_path / "one", "-o", tmp_path / "d1", "--subtype", "FLOAT")[0] == 0
    assert run("decode", tmp_path / "one", "-o", tmp_path / "d4", "--subtype", "FLOAT", "--batch-size", "3")[0] == 0
    assert batch_sizes == [4, 1, 3, 2]
    for name in files_under(tmp_path / "d1"):
        x, _ = sf.read(tmp_path / "d1" / name)
        y, _ = sf.read(tmp_path / "d4" / name)
        assert len(x) == len(y)
        np.testing.assert_allclose(x, y, atol=1e-4)


# --------------------------------------------------------------------------- bad input


def _float_wav(path: Path, value: float) -> None:
    x = speech_like(0.5, SAMPLE_RATE)
    x[1000] = value
    sf.write(path, x, SAMPLE_RATE, subtype="FLOAT")


def _truncated_wav(path: Path) -> None:
    sf.write(path, speech_like(1.0, SAMPLE_RATE), SAMPLE_RATE)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


BAD_AUDIO = {
    "empty file": (lambda p: p.write_bytes(b""), "empty file (0 bytes)"),
    "zero-length audio": (lambda p: sf.write(p, np.zeros(0, np.float32), SAMPLE_RATE), "zero-length audio"),
    "text named .wav": (lambda p: p.write_text("just some text\n" * 20), "not a readable audio file"),
    "truncated wav": (_truncated_wav, "truncated WAV"),
    "NaN samples": (lambda p: _float_wav(p, float("nan")), "NaN or Inf samples (first at 0.042 s"),
    "Inf samples": (lambda p: _float_wav(p, float("inf")), "NaN or Inf samples"),
    "missing path": (lambda p: None, "no such file"),
    "unreadable file": (lambda p: (_truncated_wav(p), p.chmod(0)), "cannot be read (Permission denied)"),
}


@pytest.mark.parametrize("case", list(BAD_AUDIO))
def test_bad_audio_is_one_clear_line_and_leaves_nothing(run, tmp_path: Path, case: str) -> None:
    make, expected = BAD_AUDIO[case]
    if case == "unreadable file" and os.geteuid() == 0:
        pytest.skip("permissions do not bind root")
    src = tmp_path / "input.wav"
    make(src)
    out_dir = tmp_path / "out"
    code, _, err = run("encode", src, "-o", out_dir / "x.hylat")
    assert code == ExitCode.FAILED
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err
    assert lines[0].startswith(f"hylac-codec: error: {src}: ") and expected in lines[0]
    assert files_under(out_dir) == []  # no output, no temporary file


def test_debug_shows_the_traceback(run, tmp_path: Path) -> None:
    src = tmp_path / "t.wav"
    src.write_text("text")
    code, _, err = run("encode", src, "--debug")
    assert code == ExitCode.FAILED and "Traceback" in err


@pytest.mark.parametrize("samples", [1, 2 * SAMPLE_RATE])
def test_one_sample_and_pure_silence_work(run, tmp_path: Path, samples: int) -> None:
    src = tmp_path / "s.wav"
    sf.write(src, np.zeros(samples, np.float32) if samples > 1 else np.full(1, 0.25, np.float32), SAMPLE_RATE)
    assert run("encode", src, "-o", tmp_path / "s.hylat")[0] == 0
    code, _, err = run("decode", tmp_path / "s.hylat", "-o", tmp_path / "s.out.wav")
    assert code == 0, err
    decoded, _ = sf.read(tmp_path / "s.out.wav")
    assert len(decoded) == samples and np.isfinite(decoded).all()


def test_folder_without_audio_and_unwritable_output(run, tmp_path: Path) -> None:
    (tmp_path / "empty_dir").mkdir()
    code, _, err = run("encode", tmp_path / "empty_dir")
    assert code == ExitCode.FAILED and "folder holds no input files" in err
    src = tmp_path / "ok.wav"
    sf.write(src, speech_like(0.3, SAMPLE_RATE), SAMPLE_RATE)
    blocker = tmp_path / "a_file"
    blocker.write_text("I am a file, not a folder")
    code, _, err = run("encode", src, "-o", blocker / "out")
    assert code == ExitCode.OUTPUT
    assert f"{blocker / 'out'}" in err and "cannot write output" in err and "Traceback" not in err
    assert blocker.read_text() == "I am a file, not a folder"


def test_bad_latent_files(run, model: codec.HybridCodec, tmp_path: Path) -> None:
    src = tmp_path / "a.wav"
    sf.write(src, speech_like(0.6, SAMPLE_RATE), SAMPLE_RATE)
    good = tmp_path / "lat" / "good.hylat"
    assert run("encode", src, "-o", good)[0] == 0
    latents, _ = load_latents(good)
    foreign = CodecStamp("hylac-other", "0f" * 32, "0e" * 32, SAMPLE_RATE, 12.5, 8192, 21)
    save_latents(tmp_path / "lat" / "foreign.hylat", latents, foreign)
    newer = tmp_path / "lat" / "newer.hylat"
    newer.write_bytes(good.read_bytes().replace(b'"format_version":"1"', b'"format_version":"9"'))
    cut = tmp_path / "lat" / "cut.hylat"
    cut.write_bytes(good.read_bytes()[:-40])

    code, _, err = run("decode", tmp_path / "lat", "-o", tmp_path / "dec")
    assert code == ExitCode.FAILED and "Traceback" not in err
    assert files_under(tmp_path / "dec") == ["good.wav"]  # the others failed, the good one was still done
    assert f"'hylac-other' (weights {'0f' * 6})" in err and f"'{model.name}' (weights {model.weights_hash[:12]})" in err
    assert "format version 9, newer than this hylac reads" in err
    assert f"{cut}: damaged latent file" in err
    assert "decode: 1 done, 3 failed" in err  # closing summary
    assert run("info", newer)[0] == ExitCode.FAILED


def test_existing_outputs_are_never_overwritten_silently(run, tmp_path: Path) -> None:
    src = tmp_path / "a.wav"
    sf.write(src, speech_like(0.5, SAMPLE_RATE), SAMPLE_RATE)
    dst = tmp_path / "a.hylat"
    assert run("encode", src)[0] == 0
    before = dst.read_bytes()
    sf.write(src, speech_like(0.7, SAMPLE_RATE, seed=5), SAMPLE_RATE)
    code, _, err = run("encode", src)
    assert code == ExitCode.OUTPUT and "output exists (pass --overwrite" in err
    assert dst.read_bytes() == before
    assert run("encode", src, "--skip-existing")[0] == 0 and dst.read_bytes() == before
    assert run("encode", src, "--overwrite")[0] == 0
    assert read_latent_info(dst).num_samples == int(0.7 * SAMPLE_RATE)


def test_a_folder_run_goes_on_after_failures_and_summarises(run, tmp_path: Path) -> None:
    folder = tmp_path / "mix"
    folder.mkdir()
    for name in ("a", "c"):
        sf.write(folder / f"{name}.wav", speech_like(0.4, SAMPLE_RATE), SAMPLE_RATE)
    (folder / "b.wav").write_bytes(b"")
    (folder / "d.flac").write_text("nope")
    code, _, err = run("encode", folder, "-o", tmp_path / "out", "--batch-size", "2")
    assert code == ExitCode.FAILED
    assert files_under(tmp_path / "out") == ["a.hylat", "c.hylat"]
    summary = err[err.index("encode: 2 done, 2 failed"):]
    assert f"failed: {folder / 'b.wav'}: empty file" in summary and f"failed: {folder / 'd.flac'}" in summary


def test_int8_round_trip_runs_on_the_cpu(run, model: codec.HybridCodec, tmp_path: Path) -> None:
    src = tmp_path / "r.wav"
    sf.write(src, speech_like(1.0, SAMPLE_RATE), SAMPLE_RATE)
    code, out, err = run("roundtrip", src, "--int8", "-o", tmp_path / "int8.wav")
    assert code == 0, err
    assert run("roundtrip", src, "-o", tmp_path / "float.wav")[0] == 0
    a, _ = sf.read(tmp_path / "float.wav")
    b, _ = sf.read(tmp_path / "int8.wav")
    assert a.shape == b.shape == (SAMPLE_RATE,) and not np.array_equal(a, b)
    code, _, err = run("roundtrip", src, "--int8", "--device", "cuda", "-o", tmp_path / "x.wav")
    assert code == ExitCode.USAGE and "--int8 runs on the CPU only" in err
    assert not (tmp_path / "x.wav").exists()


def test_usage_and_model_errors(run, tmp_path: Path) -> None:
    assert run(model=False)[0] == ExitCode.USAGE
    a, b = tmp_path / "a.wav", tmp_path / "b.wav"
    for p in (a, b):
        sf.write(p, speech_like(0.2, SAMPLE_RATE), SAMPLE_RATE)
    code, _, err = run("encode", a, b, "-o", tmp_path / "one.hylat")
    assert code == ExitCode.USAGE and "names a file" in err
    code, _, err = run("encode", a, "-o", tmp_path / "a.flac")
    assert code == ExitCode.USAGE and "writes .hylat files" in err
    code, _, err = run("encode", a, "--model", tmp_path / "no_such_model", model=False)
    assert code == ExitCode.MODEL and "cannot load codec" in err
    assert not (tmp_path / "a.hylat").exists()
    help_text = build_parser().format_help()
    assert "exit codes:" in help_text and "3    an output could not be written" in help_text


AUDIO_NOT_LATENTS = {
    "x.wav": ("RIFF/WAV", lambda p: sf.write(p, speech_like(0.3, SAMPLE_RATE), SAMPLE_RATE)),
    "x.flac": ("FLAC", lambda p: sf.write(p, speech_like(0.3, SAMPLE_RATE), SAMPLE_RATE)),
    "x.ogg": ("Ogg", lambda p: sf.write(p, speech_like(0.3, SAMPLE_RATE), SAMPLE_RATE, format="OGG")),
    "x.mp3": ("MP3", lambda p: p.write_bytes(b"ID3\x04\x00\x00\x00\x00\x00\x00" + bytes(200))),
    "y.mp3": ("MP3", lambda p: p.write_bytes(b"\xff\xfb\x90\x64" + bytes(400))),
}


@pytest.mark.parametrize("name", list(AUDIO_NOT_LATENTS))
def test_decode_and_info_name_an_audio_file_for_what_it_is(run, tmp_path: Path, name: str) -> None:
    container, make = AUDIO_NOT_LATENTS[name]
    src = tmp_path / name
    make(src)
    expected = (f"{src}: is a {container} audio file, not a .hylat latent file "
                f"(to encode it: hylac-codec encode {src})")
    code, _, err = run("decode", src, "-o", tmp_path / "out.wav")
    assert code == ExitCode.FAILED and err.strip() == f"hylac-codec: error: {expected}"
    assert not (tmp_path / "out.wav").exists()
    code, _, err = run("info", src)
    assert code == ExitCode.FAILED and expected in err


def test_console_script_success_and_failure(model_dir: Path, tmp_path: Path) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    sf.write(folder / "good.wav", speech_like(0.5, SAMPLE_RATE), SAMPLE_RATE)
    (folder / "bad.wav").write_text("text, not audio")
    env = {**os.environ, "HYLAC_TEST": "1"}
    proc = subprocess.run([str(SCRIPT), "encode", str(folder), "-o", str(tmp_path / "lat"), "--model", str(model_dir),
                           "--quiet"], capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == ExitCode.FAILED
    assert f"hylac-codec: error: {folder / 'bad.wav'}: not a readable audio file" in proc.stderr
    assert "Traceback" not in proc.stderr
    proc = subprocess.run([sys.executable, "-m", "codec", "decode", str(tmp_path / "lat" / "good.hylat"), "-o",
                           str(tmp_path / "good.wav"), "--model", str(model_dir)], capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert sf.info(str(tmp_path / "good.wav")).frames == SAMPLE_RATE // 2


def test_a_closed_stdout_pipe_ends_quietly(model: codec.HybridCodec, tmp_path: Path) -> None:
    """``hylac-codec info x.hylat | head``: the reader closes the pipe; no "error: BrokenPipeError"."""
    path = save_latents(tmp_path / "x.hylat", model.encode(torch.from_numpy(speech_like(0.5, SAMPLE_RATE)),
                                                           SAMPLE_RATE), model)
    proc = subprocess.Popen([str(SCRIPT), "info", str(path), str(path)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    proc.stdout.close()  # before the command has written anything
    err = proc.stderr.read()
    assert proc.wait(timeout=300) == ExitCode.PIPE_CLOSED and err == ""


# --------------------------------------------------------------------------- manifests


def _make_corpus(root: Path, n: int) -> Path:
    (root / "audio" / "spk1").mkdir(parents=True)
    lines = []
    for i in range(n):
        rel = f"audio/spk1/u{i}.wav" if i % 2 else f"audio/u{i}.wav"
        sf.write(root / rel, speech_like(0.2 + 0.1 * i, SAMPLE_RATE, seed=i), SAMPLE_RATE)
        lines.append({"path": rel, "text": f"utterance {i}", "speaker": i % 3})
    manifest = root / "train.jsonl"
    manifest.write_text("".join(json.dumps(line) + "\n" for line in lines))
    return manifest


def test_manifest_single_process_keeps_fields_reports_failures_and_resumes(
    model: codec.HybridCodec, tmp_path: Path
) -> None:
    manifest = _make_corpus(tmp_path / "corpus", 4)
    absolute = tmp_path / "elsewhere.wav"
    sf.write(absolute, speech_like(0.3, SAMPLE_RATE), SAMPLE_RATE)
    with manifest.open("a") as f:
        f.write(json.dumps({"path": str(absolute), "text": "absolute"}) + "\n")
        f.write("{not json\n")
        f.write(json.dumps({"path": "audio/missing.wav"}) + "\n")
    out = tmp_path / "latents"
    summary = encode_manifest(model, manifest, out, RunOptions(batch_size=2))
    assert len(summary.failed) == 2
    rows = [json.loads(line) for line in (out / "manifest.jsonl").read_text().splitlines()]
    assert [r["text"] for r in rows] == ["utterance 0", "utterance 1", "utterance 2", "utterance 3", "absolute"]
    assert rows[1]["latents"] == "audio/spk1/u1.hylat" and rows[1]["speaker"] == 1
    assert rows[4]["latents"] == absolute.resolve().relative_to(absolute.resolve().anchor).with_suffix(".hylat").as_posix()
    for row in rows:
        assert read_latent_info(out / row["latents"]).num_frames == row["num_frames"]
    failed = [json.loads(line) for line in (out / "failed.jsonl").read_text().splitlines()]
    assert [f["line"] for f in failed] == [6, 7] and "no such file" in failed[1]["error"]
    assert not (out / ".parts").exists()

    stamps = {p: p.stat().st_mtime_ns for p in out.rglob("*.hylat")}
    again = encode_manifest(model, manifest, out, RunOptions())
    assert len(again.with_status("skipped")) == 5 and len(again.with_status("done")) == 0
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*.hylat")} == stamps


def _torchrun(manifest: Path, out: Path, model_dir: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "-m", "codec",
         "encode-manifest", str(manifest), "--out", str(out), "--model", str(model_dir), "--device", "cpu", "--debug"],
        capture_output=True, text=True, env=env, timeout=300,
    )


def _wrote(stderr: str) -> list[tuple[str, str]]:
    """(rank, path) of every "rank R wrote PATH" debug message."""
    return re.findall(r"rank (\d+) wrote (\S+?\.hylat)", stderr)


def test_manifest_under_torchrun_writes_each_output_once_and_resumes(model_dir: Path, tmp_path: Path) -> None:
    manifest = _make_corpus(tmp_path / "corpus", 6)
    out = tmp_path / "latents"
    proc = _torchrun(manifest, out, model_dir)
    assert proc.returncode == 0, proc.stderr[-3000:]
    # Searched in the whole stream: two ranks share stderr, so a progress bar of one may
    # land on the same line as the other's log message.
    wrote = _wrote(proc.stderr)
    outputs = sorted(p.relative_to(out).as_posix() for p in out.rglob("*.hylat"))
    assert len(outputs) == 6 and len(wrote) == 6
    assert {path for _, path in wrote} == {str(out / o) for o in outputs}  # each exactly once
    assert {rank for rank, _ in wrote} == {"0", "1"}  # both ranks worked
    rows = [json.loads(line) for line in (out / "manifest.jsonl").read_text().splitlines()]
    assert [r["text"] for r in rows] == [f"utterance {i}" for i in range(6)]

    removed = [out / rows[1]["latents"], out / rows[4]["latents"]]
    kept = {p: p.stat().st_mtime_ns for p in out.rglob("*.hylat") if p not in removed}
    for p in removed:
        p.unlink()
    proc = _torchrun(manifest, out, model_dir)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert sorted(path for _, path in _wrote(proc.stderr)) == sorted(str(p) for p in removed)  # only what was missing
    assert all(p.is_file() for p in removed)
    assert {p: p.stat().st_mtime_ns for p in kept} == kept
    assert len((out / "manifest.jsonl").read_text().splitlines()) == 6


def test_the_cli_and_model_encode_resample_alike(run, model: codec.HybridCodec, tmp_path: Path) -> None:
    """One resampler: a 44.1 kHz stereo file encoded by the CLI (block-wise reading and
    resampling) gives the codes of model.encode on the file's samples."""
    stereo = np.stack([speech_like(2.3, 44100, 1), speech_like(2.3, 44100, 2)], axis=1)
    src = tmp_path / "in44k.wav"
    sf.write(src, stereo, 44100, subtype="FLOAT")
    assert run("encode", src, "-o", tmp_path / "x.hylat", "--chunk-seconds", "0.5")[0] == ExitCode.OK
    from_cli, _ = load_latents(tmp_path / "x.hylat")
    samples, rate = sf.read(src, dtype="float32", always_2d=True)
    direct = model.encode(torch.from_numpy(samples.T.copy()), rate)
    assert from_cli.num_samples == direct.num_samples
    assert torch.equal(from_cli.semantic, direct.semantic)
    assert torch.equal(from_cli.acoustic_codes, direct.acoustic_codes)
