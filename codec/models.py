"""Finding codecs: the models shipped inside the package, model folders, training
checkpoints and hub ids (:func:`load`)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import torch

from codec.model import HybridCodec

PRETRAINED_DIR = Path(__file__).parent / "pretrained"
#: A training checkpoint's codec: the trainer writes each module's config beside its weights.
CHECKPOINT_FILES = ("codec.json", "codec.safetensors")


def available_models() -> list[str]:
    """Names of the models shipped inside the package."""
    if not PRETRAINED_DIR.is_dir():
        return []
    return sorted(p.name for p in PRETRAINED_DIR.iterdir() if (p / "config.json").is_file())


def load(name_or_path: str | Path = "hylac-tiny", device: str | torch.device = "cpu") -> HybridCodec:
    """Load a codec in eval mode from a folder (an exported model, or a training checkpoint
    ``OUT_DIR/checkpoints/step_N``), a shipped model name, or a hub id (network permitting)."""
    path = Path(name_or_path)
    if path.is_dir():
        if not (path / "config.json").exists() and (path / CHECKPOINT_FILES[1]).exists():
            return with_phoneme_recognizer(HybridCodec.from_folder(path, "cpu", *CHECKPOINT_FILES), path).to(device)
        return HybridCodec.from_folder(path, device)
    name = str(name_or_path)
    if (PRETRAINED_DIR / name).is_dir():
        return HybridCodec.from_folder(PRETRAINED_DIR / name, device)
    if "/" in name and not path.exists() and not name.startswith((".", "/")):
        try:
            from huggingface_hub import snapshot_download

            local = snapshot_download(name, allow_patterns=["config.json", "model.safetensors", "README.md"])
        except Exception as e:
            raise FileNotFoundError(f"cannot fetch codec {name!r} from the hub ({type(e).__name__}: {e}); "
                                    f"pass a local folder instead") from None
        return HybridCodec.from_folder(local, device)
    raise FileNotFoundError(f"no codec at {name!r}: not a folder with config.json + model.safetensors, and not a "
                            f"shipped model (shipped: {', '.join(available_models()) or 'none'})")


def with_phoneme_recognizer(model: HybridCodec, checkpoint: Path) -> HybridCodec:
    """``model`` (loaded from training checkpoint ``checkpoint``) with the checkpoint's phoneme teacher (its CTC head on the semantic stream)
    as its phoneme recogniser, when the checkpoint has one (``teacher.json`` of kind
    ``phonemes``); otherwise ``model`` itself."""
    meta = checkpoint / "teacher.json"
    if model.phonemes is not None or not meta.is_file() or json.loads(meta.read_text()).get("kind") != "phonemes":
        return model
    from safetensors.torch import load_file

    upsample = int(json.loads(meta.read_text())["ctc_upsample"])
    head = load_file(str(checkpoint / "teacher.safetensors"))
    classes = head["head.weight"].shape[0] // upsample
    config = dataclasses.replace(model.config, phoneme_upsample=upsample, phoneme_classes=classes)
    out = HybridCodec(config)
    out.load_state_dict({**model.state_dict(), "phonemes.weight": head["head.weight"],
                         "phonemes.bias": head["head.bias"]})
    return out.eval()
