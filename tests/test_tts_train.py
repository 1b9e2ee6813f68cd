"""TTS training data and training through the shared trainer: pairing, batching, steps, resume, export."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import pytest
import torch

from codec import FRAME_SIZE, CodecStamp, HybridCodec, Latents, save_latents
from codec import load as codec_load
from tts import TTSConfig, load
from tts.data import DataConfig, LatentPairDataset, collate, read_manifest
from tts.text import TextFrontend
from tts.train import TTSTask, export_checkpoint, train

A = 36
SPEAKERS = {"spk-a": ("train", "en", 3), "spk-b": ("train", "fr", 3), "spk-c": ("train", "de", 1),
            "spk-v": ("valid", "en", 2)}
TEXTS = {"en": "The cat sat on the mat.", "fr": "Le chat dort.", "de": "Die Katze schläft."}

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def corpus(tmp_path_factory, tiny_codec: HybridCodec) -> dict:
    """A tiny latent manifest: random codes written as real .hylat files by a tiny codec."""
    root = tmp_path_factory.mktemp("latents")
    tiny_codec.save(root / "codec")
    g = torch.Generator().manual_seed(0)
    lines = []
    for spk, (split, lang, count) in SPEAKERS.items():
        for k in range(count):
            frames = int(torch.randint(8, 20, (1,), generator=g))
            lat = Latents(torch.randint(0, 8192, (1, frames), generator=g),
                          torch.randint(0, 21, (1, frames, A), generator=g), frames * FRAME_SIZE - 100)
            rel = f"{spk}/{k}.hylat"
            save_latents(root / rel, lat, tiny_codec)
            lines.append({"path": f"{spk}/{k}.flac", "text": TEXTS[lang], "lang": lang, "speaker": spk,
                          "duration": lat.duration, "split": split, "latents": rel, "num_frames": frames})
    manifest = root / "manifest.jsonl"
    manifest.write_text("".join(json.dumps(x) + "\n" for x in lines))
    return {"manifest": manifest, "codec": tiny_codec, "codec_dir": root / "codec"}


def _data_config(corpus, **kw) -> DataConfig:
    base = dict(manifest=str(corpus["manifest"]), min_prompt_seconds=0.4, max_prompt_seconds=1.0)
    base.update(kw)
    return DataConfig(**base)


def _dataset(corpus, split="train", **kw) -> LatentPairDataset:
    return LatentPairDataset(corpus["manifest"], split, TextFrontend("phonemes"), _data_config(corpus, **kw), 512,
                             CodecStamp.of(corpus["codec"]))


def test_pairs_come_from_the_same_speaker_and_depend_only_on_the_seed(corpus):
    ds = _dataset(corpus)
    assert len(ds) == 6  # spk-c has a single utterance: no prompt for it
    for index in range(len(ds)):
        target = ds.entries[ds.targets[index]]
        assert all(ds.entries[j]["speaker"] == target["speaker"] for j in ds.partners[ds.targets[index]])
        assert ds.targets[index] not in ds.partners[ds.targets[index]]
    a, b, c = ds[(2, 11)], ds[(2, 11)], ds[(2, 12)]
    assert a.target_pointer is None  # no aligner
    for f in vars(a):
        if getattr(a, f) is not None:
            assert torch.equal(getattr(a, f), getattr(b, f))
    assert 5 <= a.prompt_semantic.shape[0] <= 13 and a.prompt_acoustic.shape == (a.prompt_semantic.shape[0], A)
    assert a.target_acoustic.shape == (a.target_semantic.shape[0], A)
    assert a.text[0] == TextFrontend("phonemes").language_token(ds.entries[ds.targets[2]]["lang"])
    seeds = {(ds[(2, s)].prompt_semantic.shape[0], int(ds[(2, s)].prompt_semantic[0])) for s in range(20)}
    assert len(seeds) > 1 and c is not None  # the seed drives prompt choice and crop
    # Target latents are used whole (their text covers all of them).
    entry = ds.entries[ds.targets[2]]
    assert a.target_semantic.shape[0] == entry["num_frames"]


def test_long_targets_are_left_out_and_empty_splits_are_errors(corpus):
    assert len(_dataset(corpus, max_target_seconds=1.2)) < 6
    with pytest.raises(ValueError, match="no utterances in split 'test'"):
        _dataset(corpus, "test")
    with pytest.raises(ValueError, match="no usable pairs"):
        _dataset(corpus, max_target_seconds=0.1)


def test_excluded_speakers_and_other_languages_are_left_out(corpus, tmp_path):
    ds = _dataset(corpus, exclude_speakers=["spk-a"])
    assert ds.entries and all(e["speaker"] != "spk-a" for e in ds.entries)
    # A corpus language the text front-end has no tag for (e.g. recorded Russian) is skipped.
    lines = corpus["manifest"].read_text().splitlines()
    ru = [json.dumps({**json.loads(x), "lang": "ru"}) for x in lines if '"spk-b"' in x]
    manifest = corpus["manifest"].parent / "with_ru.jsonl"
    manifest.write_text("\n".join(lines + ru) + "\n")
    both = LatentPairDataset(manifest, "train", TextFrontend("phonemes"), _data_config(corpus), 512,
                             CodecStamp.of(corpus["codec"]))
    assert len(both) == len(_dataset(corpus)) and all(e["lang"] != "ru" for e in both.entries)


def test_latents_of_another_codec_are_refused(corpus):
    other = CodecStamp("hylac-other", "0" * 64, "1" * 64, 24000, 12.5, 8192, 21)
    ds = LatentPairDataset(corpus["manifest"], "train", TextFrontend("bytes"), _data_config(corpus), 512, other)
    with pytest.raises(ValueError, match="re-encode"):
        ds[(0, 0)]


def test_bad_manifests(tmp_path):
    with pytest.raises(FileNotFoundError, match="encode-manifest"):
        read_manifest(tmp_path / "none.jsonl")
    (tmp_path / "m.jsonl").write_text('{"latents": "a.hylat", "lang": "en"}\n')
    with pytest.raises(ValueError, match=r"m.jsonl:1: missing field"):
        read_manifest(tmp_path / "m.jsonl")
    (tmp_path / "m.jsonl").write_text("{oops\n")
    with pytest.raises(ValueError, match="not valid JSON"):
        read_manifest(tmp_path / "m.jsonl")


def test_collate_pads_and_keeps_lengths(corpus):
    ds = _dataset(corpus)
    items = [ds[(i, i)] for i in range(4)]
    batch = collate(items)
    assert batch.batch_size == 4
    for name in ("prompt", "text", "target"):
        lengths = getattr(batch, f"{name}_lengths").tolist()
        key = "text" if name == "text" else f"{name}_semantic"
        assert lengths == [getattr(it, key).shape[0] for it in items]
        assert getattr(batch, key).shape[1] == max(lengths)
    assert batch.target_acoustic.shape[:2] == batch.target_semantic.shape


def test_task_pins_the_codec_and_starts_from_its_codebook(corpus):
    cfg = TTSConfig.tiny(semantic_dim=16, codec=str(corpus["codec_dir"]))
    task = TTSTask(cfg, _data_config(corpus))
    assert cfg.codec_latent_hash == corpus["codec"].latent_hash
    book = corpus["codec"].semantic_embedding(torch.arange(8192)[None])[0]
    w = task.model.semantic_embed.weight
    torch.testing.assert_close(w / w.norm(), book / book.norm(), rtol=1e-4, atol=1e-6)
    with pytest.raises(ValueError, match="does not match"):
        TTSTask(TTSConfig.tiny(semantic_dim=16, codec=str(corpus["codec_dir"]), codec_latent_hash="ab" * 32),
                _data_config(corpus))


def _train(corpus, out: Path, steps: int, resume: bool = False, extra: tuple[str, ...] = ()):
    overrides = [
        f"trainer.out_dir={out}", f"trainer.max_steps={steps}", "trainer.batch_size=4", "trainer.num_workers=0",
        "trainer.warmup_steps=1", "trainer.lr=0.003", "trainer.log_every=1", "trainer.checkpoint_every=4",
        "trainer.valid_every=4", "trainer.valid_batches=1", "trainer.progress=false", "trainer.tensorboard=true",
        f"model.codec={corpus['codec_dir']}", "model.semantic_dim=16", "model.hidden_size=32", "model.num_layers=2",
        "model.num_heads=4", "model.num_kv_heads=2", "model.intermediate_size=64", "model.flow_dim=32",
        "model.flow_layers=1", "model.flow_heads=2", "model.max_positions=256",
        f"data.manifest={corpus['manifest']}", "data.min_prompt_seconds=0.4", "data.max_prompt_seconds=1.0",
        *extra,
    ]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return train(None, overrides, resume=resume)


def test_training_lowers_the_loss_resumes_and_exports(corpus, tmp_path):
    result = _train(corpus, tmp_path / "run", 8)
    assert result.step == 8 and result.checkpoint is not None
    log = (tmp_path / "run" / "train.log").read_text()
    losses = [float(line.split("| loss ")[1].split()[0]) for line in log.splitlines() if "lr/tts" in line]
    assert len(losses) == 8
    assert sum(losses[-2:]) / 2 < sum(losses[:2]) / 2, losses
    assert "valid" in log and "semantic_acc" in log
    assert any((tmp_path / "run" / "tensorboard").iterdir())

    resumed = _train(corpus, tmp_path / "run", 10, resume=True)
    assert resumed.start_step == 8 and resumed.step == 10

    folder = export_checkpoint(resumed.checkpoint, tmp_path / "model")
    synth = load(folder)
    assert synth.model.config.codec_latent_hash == corpus["codec"].latent_hash
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        audio = synth.generate("Hello.", "en", torch.randn(3 * 24000) * 0.1, 24000, seed=0,
                               sampling=synth_sampling())
    assert audio.dim() == 1 and audio.numel() % FRAME_SIZE == 0
    with pytest.raises(FileNotFoundError, match="not a TTS training checkpoint"):
        export_checkpoint(tmp_path, tmp_path / "x")
    # An existing model folder is replaced only with --overwrite: an output error, as in hylac-codec.
    from codec import ExitCode
    from tts import cli as tts_cli

    before = (folder / "model.safetensors").read_bytes()
    assert tts_cli.main(["export", str(resumed.checkpoint), str(folder)]) == ExitCode.OUTPUT
    assert (folder / "model.safetensors").read_bytes() == before
    assert tts_cli.main(["export", str(resumed.checkpoint), str(folder), "--overwrite"]) == ExitCode.OK


def _with_recogniser(corpus, folder: Path) -> Path:
    """The corpus codec with a phoneme recogniser added (the same latent space), saved to ``folder``."""
    from codec import CodecConfig
    from codec.training.phonemes import NUM_PHONEMES

    torch.manual_seed(5)
    rec = HybridCodec(CodecConfig.tiny(phoneme_upsample=2, phoneme_classes=NUM_PHONEMES)).eval()
    missing = rec.load_state_dict(corpus["codec"].state_dict(), strict=False).missing_keys
    assert all(k.startswith("phonemes.") for k in missing)
    assert rec.latent_hash == corpus["codec"].latent_hash
    rec.save(folder)
    return folder


def test_aligned_pointer_data_training_and_generation(corpus, tmp_path):
    """With an advance head every target comes with its frames' pointer (aligned on the codec's
    recogniser), training reports the advance loss, and the exported model speaks."""
    from tts.align import PhonemeAligner

    folder = _with_recogniser(corpus, tmp_path / "codec")
    aligner = PhonemeAligner(codec_load(folder), len(TextFrontend("phonemes").languages))
    ds = LatentPairDataset(corpus["manifest"], "train", TextFrontend("phonemes"), _data_config(corpus), 512,
                           CodecStamp.of(corpus["codec"]), aligner)
    items = [ds[(i, i)] for i in range(3)]
    for it in items:
        p = it.target_pointer
        assert p.shape == (it.target_semantic.shape[0] + 1,) and p[0] == 1 and p[-1] == it.text.shape[0]
        assert (p.diff() >= 0).all() and (p[:-1] < it.text.shape[0]).all()
    batch = collate(items)
    assert batch.target_pointer.shape == (3, batch.target_semantic.shape[1] + 1)

    with pytest.raises(ValueError, match="phoneme recogniser"):
        TTSTask(TTSConfig.tiny(semantic_dim=16, codec=str(corpus["codec_dir"]), pointer_window=3, advance_classes=4),
                _data_config(corpus))
    result = _train(corpus, tmp_path / "run", 3, extra=(f"model.codec={folder}", "model.pointer_window=3",
                                                        "model.advance_classes=4"))
    log = (tmp_path / "run" / "train.log").read_text()
    assert "advance" in log
    synth = load(export_checkpoint(result.checkpoint, tmp_path / "model"))
    assert synth.model.advance_head is not None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        audio = synth.generate("Hello.", "en", torch.randn(3 * 24000) * 0.1, 24000, seed=0,
                               sampling=synth_sampling())
    assert audio.dim() == 1 and audio.numel() % FRAME_SIZE == 0


def synth_sampling():
    from tts import SamplingConfig

    return SamplingConfig(steps=1, max_seconds=0.4)


def test_config_files_load_with_the_trainer_schema():
    from codec.training import TrainerConfig, load_config
    from tts.train import SCHEMA

    root = Path(__file__).resolve().parents[1] / "configs"
    for name in ("tts_tiny.yaml", "tts_base.yaml"):
        cfg = load_config(root / name, [], {"trainer": TrainerConfig, **SCHEMA})
        assert isinstance(cfg["model"], TTSConfig)
    base = load_config(root / "tts_base.yaml", [], {"trainer": TrainerConfig, **SCHEMA})["model"]
    assert (base.hidden_size, base.num_layers, base.num_heads, base.num_kv_heads) == (3072, 26, 32, 8)
