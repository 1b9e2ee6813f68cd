"""``--quick``: tiny random models and a small espeak-ng corpus, to check the pipeline end to end.

The codec carries a (random) phoneme head, so the phoneme-error columns are computed; the
corpus has English (two speakers), French and German test recordings, so the other
languages take the fixed sentences; two checkpoints of the TTS (a training checkpoint
folder and an exported model folder) make the training curve.
"""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass
from pathlib import Path

import soundfile as sf
import torch
import yaml
from safetensors.torch import save_model

import codec
import tts
from codec.training.phonemes import NUM_PHONEMES

SENTENCES = {
    "en": ("The quick brown fox jumps over the lazy dog.", "Please call me back before noon tomorrow.",
           "We will meet at the station at seven."),
    "fr": ("Le train part à huit heures.", "Nous avons mangé du pain."),
    "de": ("Der Zug fährt um acht Uhr ab.", "Wir haben Brot gegessen."),
}
VOICES = {"en": (("low", "en-us", 30), ("high", "en-us", 70)), "fr": (("fr", "fr", 50),), "de": (("de", "de", 50),)}


@dataclass
class QuickSetup:
    synth: tts.Synthesizer
    manifest: Path
    checkpoints: list[Path]


def _tts_model(cfg: tts.TTSConfig, seed: int) -> tts.TTSModel:
    torch.manual_seed(seed)
    return tts.TTSModel(cfg).eval()


def _corpus(folder: Path) -> Path:
    lines = []
    for lang, voices in VOICES.items():
        for speaker, voice, pitch in voices:
            for k, text in enumerate(SENTENCES[lang]):
                path = folder / f"{speaker}-{k}.wav"
                subprocess.run(["espeak-ng", "-v", voice, "-p", str(pitch), "-w", str(path), text], check=True)
                lines.append(json.dumps({"path": path.name, "text": text, "lang": lang, "speaker": speaker,
                                         "split": "test", "duration": sf.info(str(path)).duration}))
    manifest = folder / "manifest.jsonl"
    manifest.write_text("\n".join(lines) + "\n")
    return manifest


def quick_setup(folder: Path) -> QuickSetup:
    """Write the tiny models, corpus and checkpoints under ``folder``."""
    torch.manual_seed(0)
    codec_model = codec.HybridCodec(codec.CodecConfig.tiny(phoneme_upsample=2, phoneme_classes=NUM_PHONEMES)).eval()
    codec_dir = codec_model.save(folder / "codec")
    cfg = tts.TTSConfig.tiny(codec=str(codec_dir), semantic_dim=codec_model.semantic_dim,
                             codec_latent_hash=codec_model.latent_hash)
    synth = tts.Synthesizer(_tts_model(cfg, 0), codec_model)
    # A training checkpoint (what the trainer writes: config.yaml + one safetensors per module) ...
    step1 = folder / "run" / "checkpoints" / "step_0000001"
    step1.mkdir(parents=True)
    (step1 / "config.yaml").write_text(yaml.safe_dump({"model": cfg.to_dict()}))
    save_model(_tts_model(cfg, 1), str(step1 / "tts.safetensors"))
    # ... and an exported model folder whose model card states its step.
    exported = _tts_model(cfg, 2).save(folder / "exported")
    (exported / "README.md").write_text("# quick\n\nTrained for 2 steps.\n")
    return QuickSetup(synth, _corpus(folder), [step1, exported])
