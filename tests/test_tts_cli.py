"""hylac-tts through its console script: no silent overwrite, atomic output, one exit-code table,
bounded arguments, a default seed, progress, and inputs named for what they are."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from codec import FRAME_SIZE, ExitCode
from tts import Synthesizer
from tts.cli import main

SR = 24000
SCRIPT = Path(sys.executable).with_name("hylac-tts")
FAST = ["--steps", "1", "--max-seconds", "0.4"]


@pytest.fixture(scope="module")
def model_dir(tiny_tts_dir: Path) -> Path:
    """The model the console script speaks with: a tiny random one with its codec in a subfolder."""
    return tiny_tts_dir


@pytest.fixture(scope="module")
def voice(tmp_path_factory) -> Path:
    t = np.arange(int(3.2 * SR)) / SR
    path = tmp_path_factory.mktemp("voice") / "ref.wav"
    sf.write(str(path), 0.3 * np.sin(2 * np.pi * 180 * t), SR)
    return path


def hylac_tts(*args: str | Path) -> subprocess.CompletedProcess[str]:
    """Run the installed console script (``python -m tts`` where it is not installed)."""
    cmd = [str(SCRIPT)] if SCRIPT.is_file() else [sys.executable, "-m", "tts"]
    return subprocess.run([*cmd, *map(str, args)], capture_output=True, text=True, timeout=300)


def generate(model_dir: Path, voice: Path, out: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return hylac_tts("generate", "--model", model_dir, "--text", "Hello there.", "--lang", "en", "--voice", voice,
                     "-o", out, *FAST, *extra)


def _one_clear_line(proc: subprocess.CompletedProcess[str], code: ExitCode, message: str) -> None:
    assert proc.returncode == code, (proc.returncode, proc.stderr)
    assert message in proc.stderr
    assert "Traceback" not in proc.stderr


def run_main(capsys, *args: str | Path) -> tuple[int, str, str]:
    """``main`` in-process (the function the console script calls): ``(exit code, stdout, stderr)``."""
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def in_process(capsys, model_dir: Path, voice: Path, out: Path, *extra: str) -> tuple[int, str, str]:
    return run_main(capsys, "generate", "--model", model_dir, "--text", "Hello there.", "--lang", "en", "--voice",
                    voice, "-o", out, *FAST, *extra)


def test_existing_output_is_refused_without_overwrite_and_replaced_with_it(model_dir, voice, tmp_path, capsys):
    out = tmp_path / "speech.wav"
    proc = generate(model_dir, voice, out)
    assert proc.returncode == ExitCode.OK, proc.stderr
    assert sf.info(str(out)).frames == 5 * FRAME_SIZE and "seed 0" in proc.stdout
    out.write_bytes(b"keep me")
    _one_clear_line(generate(model_dir, voice, out), ExitCode.OUTPUT, "exists (pass --overwrite to replace it)")
    assert out.read_bytes() == b"keep me"
    assert in_process(capsys, model_dir, voice, out, "--overwrite")[0] == ExitCode.OK
    assert sf.info(str(out)).frames == 5 * FRAME_SIZE
    assert sorted(p.name for p in tmp_path.iterdir()) == ["speech.wav"]  # no temporary file left


def test_a_failure_while_generating_leaves_the_old_output_and_no_partial_file(model_dir, voice, tmp_path, monkeypatch,
                                                                              capsys):
    out = tmp_path / "speech.wav"
    out.write_bytes(b"old")
    real = Synthesizer.stream

    def failing(self, *args, **kwargs):
        for i, chunk in enumerate(real(self, *args, **kwargs)):
            if i == 2:
                raise RuntimeError("generation failed halfway")
            yield chunk

    monkeypatch.setattr(Synthesizer, "stream", failing)
    rc, _, err = in_process(capsys, model_dir, voice, out, "--overwrite")
    assert rc == ExitCode.FAILED
    assert "RuntimeError: generation failed halfway (--debug shows the traceback)" in err
    assert out.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["speech.wav"]


BAD_ARGUMENTS = {
    "steps": (("--steps", "100000"), "argument --steps: must be between 1 and 64, got 100000"),
    "cfg": (("--cfg", "nan"), "argument --cfg: must be between 0 and 10, got nan"),
    "seed": (("--seed", "-1"), "argument --seed: must be between 0 and 4294967295, got -1"),
    "top_k": (("--top-k", "x"), "argument --top-k: expected an integer, got 'x'"),
    "max_seconds": (("--max-seconds", "1e9"), "argument --max-seconds: must be between 0.08 and 120, got 1e+09"),
    "threads": (("--threads", "100000"), "argument --threads: must be between 0 and 256, got 100000"),
    "lang": (("--lang", "klingon"), "argument --lang: invalid choice: 'klingon'"),
    "suffix": (("-o", "o.xyz"), "unknown audio suffix '.xyz'"),
    "empty_text": (("--text", " "), "error: --text is empty"),
}


def test_bad_arguments_are_usage_errors_through_the_console_script(model_dir, voice, tmp_path):
    _one_clear_line(generate(model_dir, voice, tmp_path / "o.wav", "--steps", "100000"), ExitCode.USAGE,
                    BAD_ARGUMENTS["steps"][1])
    assert not (tmp_path / "o.wav").exists()


@pytest.mark.parametrize("case", sorted(BAD_ARGUMENTS))
def test_every_numeric_argument_is_bounded(model_dir, voice, tmp_path, capsys, case):
    args, message = BAD_ARGUMENTS[case]
    if case == "suffix":
        args = ("-o", str(tmp_path / "o.xyz"))
    code, _, err = in_process(capsys, model_dir, voice, tmp_path / "o.wav", *args)
    assert code == ExitCode.USAGE and message in err and "Traceback" not in err
    assert list(tmp_path.iterdir()) == []


def test_model_and_input_errors_have_their_exit_codes(model_dir, voice, tmp_path):
    _one_clear_line(generate(tmp_path / "no-model", voice, tmp_path / "a.wav"), ExitCode.MODEL,
                    "cannot load TTS model")
    _one_clear_line(generate(model_dir, tmp_path, tmp_path / "a.wav"), ExitCode.FAILED,
                    f"voice prompt {tmp_path}: is a folder, not an audio file")
    assert list(tmp_path.iterdir()) == []


def test_unwritable_outputs_and_unusable_voices_are_one_line_each(model_dir, voice, tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("a file where a folder should be")
    code, _, err = in_process(capsys, model_dir, voice, blocker / "sub" / "a.wav")
    assert code == ExitCode.OUTPUT
    assert f"{blocker / 'sub' / 'a.wav'}: cannot write output ('{blocker}' is a file, not a folder)" in err
    code, _, err = in_process(capsys, model_dir, voice, tmp_path)
    assert code == ExitCode.USAGE and "unknown audio suffix" in err
    (tmp_path / "folder.wav").mkdir()
    code, _, err = in_process(capsys, model_dir, voice, tmp_path / "folder.wav")
    assert code == ExitCode.OUTPUT and "it is a folder" in err
    for name, content, what in (("notes.wav", b"just some text", "not a readable audio file (a text file"),
                                ("empty.wav", b"", "empty file (0 bytes)"),
                                ("model.wav", b"\x10\x00\x00\x00\x00\x00\x00\x00{}",
                                 "not a readable audio file (a safetensors file")):
        (tmp_path / name).write_bytes(content)
        code, _, err = in_process(capsys, model_dir, tmp_path / name, tmp_path / "a.wav")
        assert code == ExitCode.FAILED and f"voice prompt {tmp_path / name}: {what}" in err, err
    code, _, err = in_process(capsys, model_dir, tmp_path / "missing.wav", tmp_path / "a.wav")
    assert code == ExitCode.FAILED and "missing.wav: no such file" in err
    assert not (tmp_path / "a.wav").exists()


def test_same_command_same_audio_and_seed_changes_it(model_dir, voice, tmp_path, capsys):
    assert generate(model_dir, voice, tmp_path / "a.wav").returncode == ExitCode.OK
    assert in_process(capsys, model_dir, voice, tmp_path / "b.wav")[0] == ExitCode.OK
    assert in_process(capsys, model_dir, voice, tmp_path / "c.wav", "--seed", "5")[0] == ExitCode.OK
    a, b, c = (sf.read(str(tmp_path / f"{n}.wav"))[0] for n in "abc")
    assert np.array_equal(a, b)  # in another process, too
    assert not np.array_equal(a, c)


def test_train_and_export_arguments_are_usage_errors(tmp_path, capsys):
    code, _, err = run_main(capsys, "train", "--config", tmp_path / "missing.yaml")
    assert code == ExitCode.USAGE and "does not exist" in err
    (tmp_path / "bad.yaml").write_text("model:\n  hidden_sise: 64\n")
    code, _, err = run_main(capsys, "train", "--config", tmp_path / "bad.yaml")
    assert code == ExitCode.USAGE and "hidden_sise" in err and "Traceback" not in err
    code, _, err = run_main(capsys, "export", tmp_path / "no-checkpoint", tmp_path / "out")
    assert code == ExitCode.USAGE and "does not exist" in err


def test_help_lists_the_shared_exit_code_table():
    proc = hylac_tts("generate", "--help")
    assert proc.returncode == ExitCode.OK
    for code in ExitCode:
        assert f"  {code.value:<4} {code.meaning}" in proc.stdout


def test_a_closed_stdout_pipe_ends_quietly(model_dir, voice, tmp_path):
    """``hylac-tts generate ... | head`` with the reader gone: the audio is written, no error is printed."""
    cmd = [str(SCRIPT)] if SCRIPT.is_file() else [sys.executable, "-m", "tts"]
    proc = subprocess.Popen([*cmd, "generate", "--model", str(model_dir), "--text", "Hello there.", "--lang", "en",
                             "--voice", str(voice), "-o", str(tmp_path / "a.wav"), *FAST],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    proc.stdout.close()  # before the summary line is printed
    err = proc.stderr.read()
    assert proc.wait(timeout=300) == ExitCode.PIPE_CLOSED
    assert "error" not in err and "BrokenPipe" not in err and "Exception ignored" not in err, err
    assert (tmp_path / "a.wav").is_file()


def test_long_generation_shows_progress(model_dir, voice, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr("tts.cli.PROGRESS_DELAY_S", 0.0)  # the bar waits this long before it appears
    code, _, err = in_process(capsys, model_dir, voice, tmp_path / "a.wav")
    assert code == ExitCode.OK and "generate: 0.0 s of audio [" in err
    code, out, err = in_process(capsys, model_dir, voice, tmp_path / "b.wav", "--quiet")
    assert code == ExitCode.OK and "s of audio" not in err and out == ""
