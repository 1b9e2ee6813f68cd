"""How the project's models live on disk: strict JSON configs and weight folders.

A model folder holds ``config.json`` (the architecture dataclass as a JSON object) and
``model.safetensors`` (the ``state_dict``). Both the codec and the TTS model use these
functions, so their folders behave the same: each file is written atomically, weights
load as float32 with a strict ``load_state_dict``, and a missing file, invalid JSON, an
unknown config key or damaged weights is an error naming the file.
"""

from __future__ import annotations

import dataclasses
import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import torch
from safetensors.torch import load_file, save_file
from torch import nn

__all__ = ["CONFIG_FILE", "WEIGHTS_FILE", "JsonConfig", "load_weights_folder", "save_weights_folder"]

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"

M = TypeVar("M", bound=nn.Module)
C = TypeVar("C", bound="JsonConfig")


class JsonConfig:
    """Mixin for config dataclasses stored as one JSON object.

    Subclasses set ``config_kind`` (e.g. ``"codec"``), which names them in error messages.
    Reading is strict: an unknown key is a ``ValueError`` that lists the valid keys.
    """

    config_kind: ClassVar[str] = "config"

    def to_dict(self) -> dict[str, Any]:
        """The fields as a JSON-ready dict (tuples written as lists)."""
        d = dataclasses.asdict(self)
        for k, v in d.items():
            if isinstance(v, tuple):
                d[k] = list(v)
        return d

    @classmethod
    def from_dict(cls: type[C], data: dict[str, Any]) -> C:
        valid = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - valid)
        if unknown:
            raise ValueError(f"unknown {cls.config_kind} config key(s) {unknown}; valid keys: {sorted(valid)}")
        return cls(**data)

    def save(self, path: str | Path) -> None:
        _write_json(Path(path), self.to_dict())

    @classmethod
    def from_json(cls: type[C], path: str | Path) -> C:
        try:
            data = json.loads(Path(path).read_text())
        except json.JSONDecodeError as e:
            raise ValueError(f"{path}: not valid JSON ({e})") from None
        if not isinstance(data, dict):
            raise ValueError(f"{path}: expected a JSON object")
        return cls.from_dict(data)


def _write_json(path: Path, data: dict[str, Any]) -> None:
    path.write_text(json.dumps(data, indent=2) + "\n")


def _atomic_write(path: Path, write: Callable[[Path], object]) -> None:
    # A hidden temporary file in the same folder, renamed over the target: readers never
    # see a half-written file, and a failed write leaves the previous one in place.
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    os.close(fd)
    try:
        write(Path(tmp))
        # mkstemp creates the file private (0600); give it the permissions a plain write would.
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def save_weights_folder(
    folder: str | Path, module: nn.Module, config: dict[str, Any], dtype: torch.dtype | None = None,
    overwrite: bool = True,
) -> Path:
    """Write ``config.json`` (``config`` as JSON) and ``model.safetensors`` into ``folder`` (created).

    Each file is written atomically. ``dtype`` casts the floating-point tensors of the
    state dict (None keeps them as they are); other tensors are stored unchanged. Without
    ``overwrite``, a folder that already holds either file is left alone (FileExistsError).
    Returns ``folder``.
    """
    folder = Path(folder)
    held = [f for f in (CONFIG_FILE, WEIGHTS_FILE) if (folder / f).exists()]
    if held and not overwrite:
        raise FileExistsError(f"{folder} already holds a model ({', '.join(held)}); replace it with "
                              "overwrite=True (--overwrite on the command line)")
    folder.mkdir(parents=True, exist_ok=True)
    state = {
        k: (v.detach().to("cpu", dtype) if dtype is not None and v.is_floating_point() else v.detach().cpu())
        .contiguous()
        for k, v in module.state_dict().items()
    }
    _atomic_write(folder / WEIGHTS_FILE, lambda p: save_file(state, str(p), metadata={"format": "pt"}))
    _atomic_write(folder / CONFIG_FILE, lambda p: _write_json(p, config))
    return folder


def load_weights_folder(folder: str | Path, kind: str, build: Callable[[Path], M], config_file: str = CONFIG_FILE,
                        weights_file: str = WEIGHTS_FILE) -> M:
    """Load a folder written by :func:`save_weights_folder`.

    ``build(config_path)`` reads ``config.json`` and returns a fresh module; its weights
    are then loaded from ``model.safetensors`` as float32 (integer buffers unchanged) with
    a strict ``load_state_dict``. ``kind`` names the folder in errors ("codec"). Other file
    names (``config_file``, ``weights_file``) read a training checkpoint's module.

    Raises:
        FileNotFoundError: a file is missing ("<folder>: not a <kind> folder (missing ...)").
        ValueError: the weights file cannot be read.
    """
    folder = Path(folder)
    for f in (config_file, weights_file):
        if not (folder / f).is_file():
            raise FileNotFoundError(f"{folder}: not a {kind} folder (missing {f})")
    model = build(folder / config_file)
    try:
        state = load_file(str(folder / weights_file))
    except Exception as e:  # safetensors raises several types for damaged files
        raise ValueError(f"{folder / weights_file}: cannot read weights ({e})") from None
    model.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in state.items()}, strict=True)
    return model
