"""Codec training end to end: the YAML recipe, the trainer, DDP under torchrun, resume, export."""

from __future__ import annotations

import dataclasses
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
import yaml
from safetensors.torch import load_file

import codec
from codec import ExitCode
from codec.cli.main import main as cli_main
from codec.training.task import train

REPO = Path(__file__).resolve().parent.parent


def write_corpus(root: Path, n: int = 12) -> Path:
    """Tiny manifest corpus: tones of varying length with made-up transcripts, 2 speakers, 2 splits."""
    rng = np.random.default_rng(0)
    lines = []
    (root / "audio").mkdir(parents=True)
    for i in range(n):
        seconds = 0.4 + 0.1 * (i % 5)
        t = np.arange(int(seconds * 16000)) / 16000
        wav = 0.3 * np.sin(2 * math.pi * (150 + 20 * i) * t) + 0.01 * rng.standard_normal(t.size)
        path = f"audio/u{i}.wav"
        sf.write(root / path, wav.astype(np.float32), 16000)  # resampled to 24 kHz by the loader
        lines.append({"path": path, "text": "a b", "phonemes": "ab ba" if i % 3 else "", "lang": "en",
                      "speaker": f"s{i % 2}", "duration": seconds, "split": "valid" if i >= n - 2 else "train"})
    manifest = root / "manifest.jsonl"
    manifest.write_text("".join(json.dumps(x) + "\n" for x in lines))
    return manifest


def export(checkpoint: Path, out: Path, dtype: torch.dtype = torch.float16) -> Path:
    """What ``hylac-codec export`` does: a checkpoint's codec as a model folder."""
    return codec.load(checkpoint).save(out, dtype=dtype, overwrite=False)


def write_config(tmp: Path, manifest: Path, out_dir: Path, model: dict | None = None, **trainer) -> Path:
    cfg = {
        "trainer": {"out_dir": str(out_dir), "max_steps": 4, "batch_size": 3, "num_workers": 0, "seed": 1,
                    "lr": {"gen": 1e-3, "disc": 1e-4}, "warmup_steps": 1, "log_every": 1, "checkpoint_every": 2,
                    "valid_every": 4, "valid_batches": 1, "tensorboard": False, "progress": False, **trainer},
        "model": {"name": "hylac-test", "dim": 32, "num_heads": 2, "encoder_layers": [1, 1, 1, 1],
                  "decoder_layers": [1, 1, 1, 1], "semantic_dim": 16, "semantic_lookup_dim": 4, **(model or {})},
        "loss": {"mel_windows": [128, 512], "mel_bins": [20, 40], "stft": 1.0, "stft_windows": [512],
                 "adversarial_start": 1},
        "discriminator": {"n_ffts": [256], "channels": 4},
        "teacher": {"kind": "phonemes"},
        "data": {"train": [str(manifest)], "valid": [str(manifest)], "max_seconds": 0.7},
    }
    path = tmp / "config.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


@pytest.fixture()
def corpus(tmp_path: Path) -> Path:
    return write_corpus(tmp_path / "corpus")


def test_train_validate_checkpoint_and_export(tmp_path: Path, corpus: Path) -> None:
    config = write_config(tmp_path, corpus, tmp_path / "run")
    result = train(config)
    assert result.step == 4 and result.skipped_steps == 0
    assert {"mel", "distill", "adv", "disc", "perplexity"} <= set(result.train_metrics)
    assert {"mel", "pesq_wb", "stoi", "perplexity", "codes_used"} <= set(result.valid_metrics)
    ckpt = result.checkpoint
    assert (ckpt / "codec.safetensors").is_file() and (ckpt / "teacher.safetensors").is_file()
    folder = export(ckpt, tmp_path / "exported")
    model = codec.load(folder)
    weights = load_file(str(folder / "model.safetensors"))
    assert all(v.dtype == torch.float16 for v in weights.values() if v.is_floating_point())
    assert not any(k.startswith(("teacher", "head", "discriminator")) for k in weights)
    out = model.decode(model.encode(torch.randn(5000) * 0.1, 24000))
    assert out.shape == (1, 1, 5000) and torch.isfinite(out).all()
    # The checkpoint folder itself loads too (float32, as trained): same as a float32 export.
    direct, exported = codec.load(ckpt), codec.load(export(ckpt, tmp_path / "fp32", dtype=torch.float32))
    assert direct.weights_hash == exported.weights_hash and not direct.training
    # An exported model is replaced only on request, from the API and from the command line.
    before = (folder / "model.safetensors").read_bytes()
    with pytest.raises(FileExistsError, match="already holds a model"):
        export(ckpt, folder, dtype=torch.float32)
    assert cli_main(["export", str(ckpt), str(folder), "--dtype", "float32"]) == ExitCode.OUTPUT
    assert (folder / "model.safetensors").read_bytes() == before
    assert cli_main(["export", str(ckpt), str(folder), "--dtype", "float32", "--overwrite"]) == ExitCode.OK
    assert codec.load(folder).weights_hash == direct.weights_hash


def test_export_keeps_the_phoneme_teacher_as_a_recognizer(tmp_path: Path, corpus: Path) -> None:
    result = train(write_config(tmp_path, corpus, tmp_path / "run", max_steps=2, valid_every=0))
    assert json.loads((result.checkpoint / "teacher.json").read_text())["kind"] == "phonemes"
    assert cli_main(["export", str(result.checkpoint), str(tmp_path / "model")]) == ExitCode.OK
    model = codec.load(tmp_path / "model")
    # Loading the checkpoint itself attaches the same recogniser (what the CLI exports).
    direct = codec.load(result.checkpoint)
    assert model.phonemes is not None and direct.phonemes is not None
    teacher = load_file(str(result.checkpoint / "teacher.safetensors"))
    assert torch.allclose(model.phonemes.weight, teacher["head.weight"].float(), atol=1e-3)
    assert torch.equal(direct.phonemes.weight, teacher["head.weight"].float())
    # The recogniser gives the codes no meaning: same latent space, same codes as without it.
    plain = codec.HybridCodec(dataclasses.replace(direct.config, phoneme_upsample=0, phoneme_classes=0)).eval()
    plain.load_state_dict({k: v for k, v in direct.state_dict().items() if not k.startswith("phonemes.")})
    assert direct.latent_hash == plain.latent_hash
    wav = torch.randn(1, 4 * 1920) * 0.1
    latents = model.encode(wav, 24000)
    assert torch.equal(latents.semantic, plain.encode(wav, 24000).semantic)
    ids = model.recognize_phonemes(latents)
    assert len(ids) == 1 and all(0 < i < model.config.phoneme_classes for i in ids[0])
    with pytest.raises(ValueError, match="no phoneme recogniser"):
        plain.recognize_phonemes(latents)

def test_resume_is_exact(tmp_path: Path, corpus: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    straight = train(write_config(tmp_path, corpus, tmp_path / "a", valid_every=0))
    config = write_config(tmp_path, corpus, tmp_path / "b", valid_every=0)

    import codec.training.task as codec_train

    real_step = codec_train.codec_train_step

    def killed_at_step_2(*args, **kwargs):
        if args[6] == 2:  # the step index: the run dies after the step-2 checkpoint
            raise KeyboardInterrupt
        return real_step(*args, **kwargs)

    monkeypatch.setattr(codec_train, "codec_train_step", killed_at_step_2)
    with pytest.raises(KeyboardInterrupt):
        train(config)
    monkeypatch.setattr(codec_train, "codec_train_step", real_step)
    resumed = train(config, resume=True)
    assert resumed.start_step == 2 and resumed.step == 4
    a = load_file(str(straight.checkpoint / "codec.safetensors"))
    b = load_file(str(resumed.checkpoint / "codec.safetensors"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_unknown_key_is_a_clear_cli_error(tmp_path: Path, corpus: Path, capsys) -> None:
    from codec.cli.main import main

    config = write_config(tmp_path, corpus, tmp_path / "run")
    assert main(["train", "--config", str(config), "--set", "loss.mell=3"]) == 2
    err = capsys.readouterr().err
    assert "loss.mell" in err and "mel_windows" in err


def test_torchrun_two_processes(tmp_path: Path, corpus: Path) -> None:
    config = write_config(tmp_path, corpus, tmp_path / "ddp", max_steps=3, checkpoint_every=3, valid_every=3)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    proc = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
         "-m", "codec", "train", "--config", str(config)],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    latest = (tmp_path / "ddp" / "checkpoints" / "latest").read_text().strip()
    assert latest.endswith("3")
    model = codec.load(export(tmp_path / "ddp" / "checkpoints" / latest, tmp_path / "ddp_model"))
    assert model.encode(torch.zeros(1920), 24000).num_frames == 1


def test_init_from_a_shipped_folder(tmp_path: Path, corpus: Path) -> None:
    source = codec.HybridCodec(codec.CodecConfig.tiny(name="hylac-test"))
    folder = source.save(tmp_path / "start", dtype=torch.float16)
    config = write_config(tmp_path, corpus, tmp_path / "ft", max_steps=1, valid_every=0,
                          lr={"gen": 0.0, "disc": 0.0}, init_from={"codec": str(folder)})
    result = train(config)
    trained = load_file(str(result.checkpoint / "codec.safetensors"))
    start = load_file(str(folder / "model.safetensors"))
    # lr 0 leaves every weight as loaded, except what the dead-code restart moves by itself.
    moved_by_restart = {"semantic_vq.codebook", "semantic_vq.usage"}
    assert trained.keys() == start.keys()
    assert all(torch.equal(trained[k].to(start[k].dtype), start[k]) for k in start if k not in moved_by_restart)
    bad = write_config(tmp_path, corpus, tmp_path / "bad", max_steps=1, init_from={"decoder": str(folder)})
    with pytest.raises(ValueError, match="init_from names module 'decoder'"):
        train(bad)


def test_init_skip_starts_a_new_decoder_head_from_a_shipped_folder(tmp_path: Path, corpus: Path) -> None:
    source = codec.HybridCodec(codec.CodecConfig.tiny(name="hylac-test"))  # patch head
    folder = source.save(tmp_path / "start")
    new_head = {"head": {"kind": "source_filter", "envelope_bands": 8, "voicing_bands": 4}}
    config = write_config(tmp_path, corpus, tmp_path / "h", model=new_head, max_steps=1, valid_every=0,
                          lr={"gen": 0.0, "disc": 0.0}, init_from={"codec": str(folder)},
                          init_skip=["codec.decoder.out"])
    result = train(config)
    assert "control_f0" in result.train_metrics
    trained = load_file(str(result.checkpoint / "codec.safetensors"))
    start = load_file(str(folder / "model.safetensors"))
    moved_by_restart = {"semantic_vq.codebook", "semantic_vq.usage"}
    shared = [k for k in start if not k.startswith("decoder.out") and k not in moved_by_restart]
    assert shared and all(torch.equal(trained[k], start[k]) for k in shared)
    assert "decoder.out.proj.weight" in trained and "decoder.out.weight" not in trained
    strict = write_config(tmp_path, corpus, tmp_path / "strict", model=new_head, max_steps=1, valid_every=0,
                          init_from={"codec": str(folder)})
    with pytest.raises(RuntimeError, match="decoder.out.proj.weight"):
        train(strict)
    typo = write_config(tmp_path, corpus, tmp_path / "typo", model=new_head, max_steps=1, valid_every=0,
                        init_from={"codec": str(folder)}, init_skip=["codec.decoder.head"])
    with pytest.raises(ValueError, match="init_skip names 'decoder.head'"):
        train(typo)


def test_decoder_finetune_keeps_the_latent_space(tmp_path: Path, corpus: Path) -> None:
    """Stage 2 of the recipe: from a checkpoint folder, encoder + VQ + teacher frozen, GAN on."""
    first = train(write_config(tmp_path, corpus, tmp_path / "stage1", max_steps=2, valid_every=0))
    config = write_config(tmp_path, corpus, tmp_path / "stage2", max_steps=2, valid_every=0,
                          init_from={"codec": str(first.checkpoint), "teacher": str(first.checkpoint)},
                          freeze=["codec.encoder", "codec.quantizer", "teacher"])
    second = train(config)
    before = load_file(str(first.checkpoint / "codec.safetensors"))
    after = load_file(str(second.checkpoint / "codec.safetensors"))
    frozen = [k for k in before if k.startswith(("encoder.", "semantic_vq."))]
    assert frozen and all(torch.equal(before[k], after[k]) for k in frozen)
    assert any(not torch.equal(before[k], after[k]) for k in before if k.startswith("decoder."))
    wav = torch.randn(1, 4 * 1920) * 0.1
    codes = [codec.load(export(ckpt, tmp_path / name)).encode(wav, 24000)
             for ckpt, name in ((first.checkpoint, "m1"), (second.checkpoint, "m2"))]
    assert torch.equal(codes[0].semantic, codes[1].semantic)
    assert torch.equal(codes[0].acoustic, codes[1].acoustic)


def test_codec_recipes_load_and_tiny_is_the_shipped_model() -> None:
    from codec.training import TrainerConfig
    from codec.training.recipe import load_config
    from codec.training.task import SCHEMA

    loaded = {name: load_config(REPO / "configs" / name, [], {"trainer": TrainerConfig, **SCHEMA})
              for name in ("tiny.yaml", "base.yaml")}
    tiny = loaded["tiny.yaml"]
    # Stage 1 trains the controls from the analysis cache, with the control loss.
    assert tiny["model"].frontend == "analysis" and tiny["data"].analysis_cache
    assert tiny["loss"].control > 0
    shipped = codec.load("hylac-tiny").config
    # The export adds the phoneme teacher's CTC head as the model's phoneme recogniser.
    assert dataclasses.replace(tiny["model"], phoneme_upsample=shipped.phoneme_upsample,
                               phoneme_classes=shipped.phoneme_classes) == shipped
    assert shipped.phoneme_upsample == tiny["teacher"].ctc_upsample
    assert loaded["base.yaml"]["model"].frontend == tiny["model"].frontend == "analysis"
    assert loaded["base.yaml"]["model"].head == tiny["model"].head


_FAKE_PYTHON = '''
import sys, yaml
from pathlib import Path
args = sys.argv[1:]
with open("calls.txt", "a") as f:
    f.write(" ".join(args) + "\\n")
if args[:3] == ["-m", "codec", "train"]:
    sets = dict(a.split("=", 1) for a in args[args.index("--config") + 2:] if "=" in a)
    cfg = yaml.safe_load(open(args[args.index("--config") + 1]))
    out = Path(sets.get("trainer.out_dir", cfg["trainer"]["out_dir"]))
    step = f"step_{int(sets.get('trainer.max_steps', cfg['trainer']['max_steps'])):07d}"
    (out / "checkpoints" / step).mkdir(parents=True, exist_ok=True)
    (out / "checkpoints" / "latest").write_text(step)
elif args[:3] == ["-m", "codec", "export"]:
    Path(args[4]).mkdir(parents=True)
    (Path(args[4]) / "config.json").write_text("{}")
'''


def test_train_tiny_script_trains_resumably_and_exports_once(tmp_path: Path) -> None:
    """scripts/train_tiny.sh: one resumable run of configs/tiny.yaml with the extra overrides,
    then an export of its last checkpoint, which a second call does not redo."""
    fake = tmp_path / "python"
    fake.write_text(f"#!{sys.executable}\n{_FAKE_PYTHON}")
    fake.chmod(0o755)
    (tmp_path / "configs").symlink_to(REPO / "configs")
    env = {**os.environ, "PY": str(fake), "NPROC": "1"}

    def run() -> list[str]:
        subprocess.run(["bash", str(REPO / "scripts" / "train_tiny.sh"), "--set", "trainer.seed=1"], cwd=tmp_path,
                       env=env, check=True, capture_output=True, text=True)
        return (tmp_path / "calls.txt").read_text().splitlines()

    calls = run()
    trains = [c for c in calls if c.startswith("-m codec train")]
    exports = [c.split()[3:] for c in calls if c.startswith("-m codec export")]
    assert len(trains) == 1 and "--config configs/tiny.yaml" in trains[0]
    assert "--resume" in trains[0] and trains[0].endswith("--set trainer.seed=1")
    steps = yaml.safe_load((REPO / "configs" / "tiny.yaml").read_text())["trainer"]["max_steps"]
    assert exports == [[f"runs/hylac-tiny/checkpoints/step_{steps:07d}", "runs/hylac-tiny/export"]]
    again = run()[len(calls):]
    assert len(again) == 1 and again[0].startswith("-m codec train")
