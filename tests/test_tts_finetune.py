"""hylac-tts finetune: a folder or a manifest of clips -> a model folder that loads and speaks; resume goes
on without re-encoding; bad data, an occupied output folder and bad arguments are refused, with nothing written."""

from __future__ import annotations

import dataclasses
import json
import re
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from safetensors.torch import load_file

from codec import FRAME_SIZE, ExitCode
from tts import SamplingConfig, load
from tts.cli import main
from tts.finetune import DataError, FinetuneConfig, finetune

SR = 24000
SCRIPT = Path(sys.executable).with_name("hylac-tts")
TEXTS = ["The cat sat on the mat.", "A quick brown fox.", "Hello there, my friend.", "It is raining today.",
         "Bring me some tea.", "We walked home slowly."]
FAST = ["--steps", "2", "--batch-size", "2", "--threads", "1", "--device", "cpu"]

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def model_dir(tiny_tts_dir: Path) -> Path:
    """The model fine-tuning starts from: a tiny random one with its codec in a subfolder."""
    return tiny_tts_dir


def write_clip(path: Path, seconds: float, f0: float = 150.0, text: str | None = None, rate: int = SR) -> Path:
    """A voiced-like synthetic clip (a tremolo tone with a little noise) and, with ``text``, its transcript."""
    t = np.arange(int(seconds * rate)) / rate
    wav = 0.3 * np.sin(2 * np.pi * f0 * t) * (0.6 + 0.4 * np.sin(2 * np.pi * 3 * t))
    wav += 0.01 * np.random.default_rng(int(f0)).standard_normal(t.size)
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), wav, rate)
    if text is not None:
        path.with_suffix(".txt").write_text(text, encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def clips_dir(tmp_path_factory) -> Path:
    """Six 1.2-2 s clips of one speaker, ``uttN.wav`` + ``uttN.txt``."""
    root = tmp_path_factory.mktemp("voice") / "voice"
    for i, text in enumerate(TEXTS):
        write_clip(root / f"utt{i}.wav", 1.2 + 0.15 * i, 140 + 10 * i, text)
    return root


def config(data: Path, out: Path, model: Path, **kw) -> FinetuneConfig:
    base = dict(data=data, out=out, model=model, steps=6, batch_size=2, lr=3e-3, log_every=1, checkpoint_every=3,
                threads=1, device="cpu", progress=False)
    base.update(kw)
    return FinetuneConfig(**base)


def hylac_tts(*args: str | Path) -> subprocess.CompletedProcess[str]:
    """Run the installed console script (``python -m tts`` where it is not installed)."""
    cmd = [str(SCRIPT)] if SCRIPT.is_file() else [sys.executable, "-m", "tts"]
    return subprocess.run([*cmd, *map(str, args)], capture_output=True, text=True, timeout=300)


def run_main(capsys, *args: str | Path) -> tuple[int, str, str]:
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def speaks(folder: Path) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a 3 s noise prompt is fine here
        audio = load(folder).generate("Hello.", "en", torch.randn(3 * SR) * 0.1, SR, seed=0,
                                      sampling=SamplingConfig(steps=1, max_seconds=0.4))
    assert audio.dim() == 1 and audio.numel() % FRAME_SIZE == 0


def train_losses(out: Path) -> list[float]:
    log = (out / "work" / "run" / "train.log").read_text()
    return [float(m) for m in re.findall(r"step \d+/\d+ \|.*?\| loss ([\d.]+)", log)]


def test_a_folder_fine_tunes_into_a_model_that_loads_and_resume_goes_on(model_dir, clips_dir, tmp_path):
    out = tmp_path / "mine"
    cfg = config(clips_dir, out, model_dir)
    assert finetune(cfg) == out
    assert {"config.json", "model.safetensors", "README.md", "codec", "work"} <= {p.name for p in out.iterdir()}
    speaks(out)
    start, tuned = load_file(str(model_dir / "model.safetensors")), load_file(str(out / "model.safetensors"))
    assert start.keys() == tuned.keys()
    assert any(not torch.equal(start[k], tuned[k]) for k in start)
    losses = train_losses(out)
    assert len(losses) == 6 and sum(losses[-2:]) < sum(losses[:2]), losses
    card = (out / "README.md").read_text()
    assert "6 steps at batch 2" in card and "4 training and 2 validation clips" in card
    assert re.search(r"Final validation loss \| \d+\.\d{3} \(semantic", card), card
    manifest = [json.loads(line) for line in (out / "work" / "latents" / "manifest.jsonl").read_text().splitlines()]
    assert sorted(e["split"] for e in manifest) == ["train"] * 4 + ["valid"] * 2
    assert all(e["phonemes"] and e["speaker"] == "speaker" for e in manifest)

    latents = sorted((out / "work" / "latents").glob("*.hylat"))
    stamps = [p.stat().st_mtime_ns for p in latents]
    finetune(dataclasses.replace(cfg, steps=8, resume=True))
    assert [p.stat().st_mtime_ns for p in latents] == stamps  # nothing re-encoded
    log = (out / "work" / "run" / "train.log").read_text()
    assert "step_0000006 at step 6" in log and "step 8/8" in log
    assert len(train_losses(out)) == 8
    assert "8 steps at batch 2" in (out / "README.md").read_text()
    assert any(not torch.equal(tuned[k], v) for k, v in load_file(str(out / "model.safetensors")).items())
    speaks(out)


def test_a_manifest_fine_tunes_through_the_console_script(model_dir, clips_dir, tmp_path, capsys):
    root = tmp_path / "set"
    (root / "audio").mkdir(parents=True)
    lines = []
    for i, clip in enumerate(sorted(clips_dir.glob("*.wav"))):
        shutil.copy(clip, root / "audio" / clip.name)
        line = {"path": f"audio/{clip.name}", "text": clip.with_suffix(".txt").read_text(), "speaker": "ab"[i % 2]}
        if i == 5:
            line["lang"] = "fr"
        lines.append(json.dumps(line))
    manifest = root / "list.jsonl"
    manifest.write_text("\n".join(lines) + "\n")
    out = tmp_path / "from-manifest"
    proc = hylac_tts("finetune", "--data", manifest, "--out", out, "--model", model_dir, "--valid-fraction", "0",
                     *FAST)
    assert proc.returncode == ExitCode.OK, proc.stderr
    assert f"hylac-tts generate --model {out}" in proc.stdout and "Traceback" not in proc.stderr
    entries = [json.loads(x) for x in (out / "work" / "latents" / "manifest.jsonl").read_text().splitlines()]
    assert [e["speaker"] for e in entries] == list("ababab") and entries[5]["lang"] == "fr"
    assert all(e["split"] == "train" for e in entries)
    code, _, err = run_main(capsys, "generate", "--model", out, "--text", "Hello.", "--lang", "en", "--voice",
                            root / "audio" / "utt5.wav", "-o", tmp_path / "hello.wav", "--steps", "1",
                            "--max-seconds", "0.4")
    assert code == ExitCode.OK, err


def test_bad_folder_data_is_reported_by_kind_and_nothing_is_written(model_dir, tmp_path):
    data = tmp_path / "bad"
    write_clip(data / "good1.wav", 1.5, text="One good clip.")
    write_clip(data / "good2.wav", 1.5, text="Another good clip.")
    for i in range(6):
        write_clip(data / f"untranscribed{i}.wav", 1.5)
    write_clip(data / "blank.wav", 1.5, text="  \n")
    (data / "broken.wav").write_text("these are not audio samples")
    (data / "broken.txt").write_text("Broken.")
    write_clip(data / "short.wav", 0.3, text="Too short.")
    write_clip(data / "long.wav", 21.0, text="Far too long.", rate=8000)
    out = tmp_path / "out"
    proc = hylac_tts("finetune", "--data", data, "--out", out, "--model", model_dir, "--threads", "1")
    assert proc.returncode == ExitCode.FAILED, proc.stderr
    err = proc.stderr
    assert f"error: {data}: cannot fine-tune on this data (nothing was written):" in err
    assert ("6 of 12 clips without a transcript (a .txt file of the same name): untranscribed0.wav, "
            "untranscribed1.wav, untranscribed2.wav, untranscribed3.wav, untranscribed4.wav, and 1 more") in err
    assert "1 of 12 clips with an empty transcript: blank.wav" in err
    assert "1 of 12 clips with unreadable audio: broken.wav [not a readable audio file (a text file" in err
    assert "1 of 12 clips shorter than 1 s: short.wav (0.30 s)" in err
    assert "1 of 12 clips longer than 20 s (split them): long.wav (21.0 s)" in err
    assert "Traceback" not in err and "good1" not in err
    assert not out.exists()


def test_bad_manifest_lines_and_unusable_splits(model_dir, clips_dir, tmp_path, capsys):
    manifest = tmp_path / "m.jsonl"
    good = str(clips_dir / "utt0.wav")
    manifest.write_text("\n".join([
        json.dumps({"path": good, "text": "Fine."}),
        json.dumps({"path": str(clips_dir / "utt1.wav")}),
        json.dumps({"path": str(clips_dir / "utt2.wav"), "text": "Hola.", "lang": "xx"}),
        json.dumps({"path": good, "text": "Again."}),
        json.dumps({"path": "missing.wav", "text": "Gone."}),
        "{not json",
        json.dumps({"path": str(clips_dir / "utt3.wav"), "text": "..."}),
    ]) + "\n")
    out = tmp_path / "out"
    code, _, err = run_main(capsys, "finetune", "--data", manifest, "--out", out, "--model", model_dir, *FAST)
    assert code == ExitCode.FAILED, err
    for message in ('1 of 7 clips with no text (a non-empty "text" field): line 2', "in a language other than",
                    "line 3 (", "'xx'", "1 of 7 clips listed more than once: line 4", "with unreadable audio: "
                    "line 5 (missing.wav) [no such file", "on unusable manifest lines", "line 6",
                    "1 of 7 clips whose text gives no phonemes to speak: line 7"):
        assert message in err, (message, err)
    assert not out.exists()

    few = tmp_path / "few"
    for i in range(3):
        write_clip(few / f"c{i}.wav", 1.5, text=TEXTS[i])
    with pytest.raises(DataError, match="at least 4 clips"):
        finetune(config(few, out, model_dir))
    solo = tmp_path / "solo.jsonl"
    solo.write_text(json.dumps({"path": good, "text": "Solo."}) + "\n")
    with pytest.raises(DataError, match="a single clip"):
        finetune(config(solo, out, model_dir))
    assert not out.exists()


def test_an_occupied_output_folder_and_bad_arguments_are_refused(model_dir, clips_dir, tmp_path, capsys):
    out = tmp_path / "taken"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    code, _, err = run_main(capsys, "finetune", "--data", clips_dir, "--out", out, "--model", model_dir, *FAST)
    assert code == ExitCode.OUTPUT, err
    assert f"error: {out}: already exists and is not empty; pass --resume" in err
    assert sorted(p.name for p in out.iterdir()) == ["notes.txt"]

    usage = {
        ("--steps", "0"): "argument --steps: must be between 1 and 1000000, got 0",
        ("--lr", "1"): "argument --lr: must be between 1e-07 and 0.1, got 1",
        ("--valid-fraction", "0.9"): "argument --valid-fraction: must be between 0 and 0.5, got 0.9",
        ("--lang", "xx"): "argument --lang: invalid choice: 'xx'",
        ("--resume", "--overwrite"): "not allowed with argument",
    }
    for extra, message in usage.items():
        code, _, err = run_main(capsys, "finetune", "--data", clips_dir, "--out", out, *extra)
        assert code == ExitCode.USAGE and message in err, (extra, err)
    code, _, err = run_main(capsys, "finetune", "--data", tmp_path / "nowhere", "--out", out)
    assert code == ExitCode.USAGE and "--data" in err and "does not exist" in err
    code, _, err = run_main(capsys, "finetune", "--data", out / "notes.txt", "--out", tmp_path / "x")
    assert code == ExitCode.USAGE and "not a .jsonl manifest" in err
    code, _, err = run_main(capsys, "finetune", "--data", clips_dir, "--out", tmp_path / "y", "--model",
                            tmp_path / "no-model")
    assert code == ExitCode.MODEL and "cannot load TTS model" in err

    # --overwrite starts over: an earlier run's files go, the user's stay.
    (out / "work").mkdir()
    (out / "work" / "stale.txt").write_text("old run")
    code, _, err = run_main(capsys, "finetune", "--data", clips_dir, "--out", out, "--model", model_dir, "--overwrite",
                            "-q", *FAST)
    assert code == ExitCode.OK, err
    assert (out / "notes.txt").read_text() == "mine" and not (out / "work" / "stale.txt").exists()
    assert (out / "model.safetensors").is_file()
