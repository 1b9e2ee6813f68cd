"""Training checkpoints on disk: atomic writes, a ``latest`` pointer, pruning, RNG states.

Layout under a run's ``checkpoints/`` folder::

    step_0002000/           one complete checkpoint (only ever appears by an atomic rename)
      <module>.safetensors  weights of each module the task trains
      trainer_state.pt      optimizer / scheduler / grad-scaler states, RNG states, step
      config.yaml           the resolved configuration of the run
    step_0004000/
    latest                  text file naming the newest checkpoint folder
    .tmp-step_0006000-*/    a write in progress (or killed): never read, removed on next write

A checkpoint is written into a ``.tmp-`` folder beside its final place, every file and
the folder are fsynced, then the folder is renamed into place and ``latest`` is replaced
by an atomic rename too. A crash at any moment leaves the previous checkpoint and the
pointer to it intact.
"""

from __future__ import annotations

import os
import random
import re
import shutil
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, load_model, save_model
from torch import nn

__all__ = [
    "LATEST_FILE",
    "capture_rng_state",
    "checkpoint_dir_name",
    "find_latest_checkpoint",
    "list_checkpoints",
    "load_module_weights",
    "load_training_state",
    "remove_stale_temporaries",
    "restore_rng_state",
    "save_module_weights",
    "save_training_state",
    "write_checkpoint_atomically",
]

LATEST_FILE = "latest"
_TMP_PREFIX = ".tmp-"
_STEP_DIR = re.compile(r"^step_(\d+)$")


def checkpoint_dir_name(step: int) -> str:
    """``step_0001234``: zero-padded so that names sort like steps."""
    return f"step_{step:07d}"


def list_checkpoints(root: str | Path) -> list[tuple[int, Path]]:
    """Complete checkpoints under ``root`` as ``(step, folder)``, oldest first."""
    root = Path(root)
    if not root.is_dir():
        return []
    found = []
    for entry in root.iterdir():
        match = _STEP_DIR.match(entry.name)
        if match and entry.is_dir():
            found.append((int(match.group(1)), entry))
    return sorted(found)


def find_latest_checkpoint(root: str | Path) -> Path | None:
    """The folder ``latest`` names; if the pointer is missing or stale, the highest step."""
    root = Path(root)
    pointer = root / LATEST_FILE
    if pointer.is_file():
        name = pointer.read_text(encoding="utf-8").strip()
        if _STEP_DIR.match(name) and (root / name).is_dir():
            return root / name
    found = list_checkpoints(root)
    return found[-1][1] if found else None


def _fsync_path(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_tree(folder: Path) -> None:
    for entry in sorted(folder.rglob("*"), reverse=True):
        _fsync_path(entry)
    _fsync_path(folder)


def remove_stale_temporaries(root: str | Path) -> int:
    """Delete ``.tmp-*`` folders left by interrupted writes; returns how many.

    Only the single writer of ``root`` may call this (it would race with a write in progress).
    """
    root = Path(root)
    if not root.is_dir():
        return 0
    stale = [p for p in root.iterdir() if p.name.startswith(_TMP_PREFIX)]
    for path in stale:
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
    return len(stale)


def _write_latest(root: Path, name: str) -> None:
    tmp = root / f"{_TMP_PREFIX}{LATEST_FILE}"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(name + "\n")
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, root / LATEST_FILE)
    _fsync_path(root)


def write_checkpoint_atomically(
    root: str | Path,
    step: int,
    write_files: Callable[[Path], None],
    keep: int = 0,
) -> Path:
    """Write a checkpoint for ``step`` so that it either appears complete or not at all.

    Args:
        root: the checkpoints folder (created if needed).
        step: the training step; names the folder ``step_XXXXXXX``.
        write_files: writes the checkpoint's files into the folder it is given.
        keep: how many of the newest checkpoints to keep afterwards; 0 keeps all.

    Returns:
        The final checkpoint folder. An exception in ``write_files`` removes the partial
        folder and propagates; ``latest`` and earlier checkpoints are untouched.
    """
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    name = checkpoint_dir_name(step)
    final = root / name
    tmp = Path(tempfile.mkdtemp(prefix=f"{_TMP_PREFIX}{name}-", dir=root))
    try:
        write_files(tmp)
        _fsync_tree(tmp)
        if final.exists():
            # Rewriting a step (a resumed run saving again): move the old one out of the
            # way first, since a folder cannot be renamed onto a non-empty folder.
            trash = Path(tempfile.mkdtemp(prefix=f"{_TMP_PREFIX}old-{name}-", dir=root))
            os.replace(final, trash / name)
            os.replace(tmp, final)
            shutil.rmtree(trash, ignore_errors=True)
        else:
            os.replace(tmp, final)
        _fsync_path(root)
        _write_latest(root, name)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if keep > 0:
        for _, old in list_checkpoints(root)[:-keep]:
            if old != final:
                shutil.rmtree(old, ignore_errors=True)
    return final


def save_module_weights(module: nn.Module, path: str | Path) -> None:
    """Save a module's state dict as safetensors (tied weights stored once)."""
    save_model(module, str(path))


def load_module_weights(module: nn.Module, path: str | Path, skip: Sequence[str] = ()) -> None:
    """Load weights saved by ``save_module_weights``, strictly (missing or extra keys raise).

    ``skip``: dotted submodule paths (e.g. ``"decoder.out"``) left as they are; the file's
    keys under them are ignored and none are required.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no weights file {str(path)!r}")
    if not skip:
        device = next((p.device for p in module.parameters()), torch.device("cpu"))
        missing, unexpected = load_model(module, str(path), strict=False, device=str(device))
    else:
        for sub in skip:
            try:
                module.get_submodule(sub)
            except AttributeError:
                raise ValueError(f"init_skip names {sub!r}, which the module does not have") from None

        def skipped(key: str) -> bool:
            return any(key == s or key.startswith(s + ".") for s in skip)

        state = {k: v for k, v in load_file(str(path)).items() if not skipped(k)}
        own = {k for k in module.state_dict() if not skipped(k)}
        missing, unexpected = sorted(own - set(state)), sorted(set(state) - own)
        if not missing and not unexpected:
            module.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise RuntimeError(
            f"{path.name} does not match the module: missing keys {sorted(missing)}, "
            f"unexpected keys {sorted(unexpected)} (was the model configuration changed?)"
        )


def save_training_state(state: dict[str, Any], path: str | Path) -> None:
    """Save optimizer/scheduler/RNG state (tensors, numbers, strings, lists, dicts only)."""
    torch.save(state, path)


def load_training_state(path: str | Path) -> dict[str, Any]:
    """Load ``save_training_state`` output with ``weights_only=True`` (no arbitrary pickles)."""
    return torch.load(path, map_location="cpu", weights_only=True)


def capture_rng_state() -> dict[str, Any]:
    """The state of every random generator training draws from (python, numpy, torch, CUDA)."""
    np_state = np.random.get_state(legacy=False)
    state: dict[str, Any] = {
        "python": random.getstate(),
        # numpy's key array stored as a tensor so that the file loads with weights_only.
        "numpy": {
            "bit_generator": np_state["bit_generator"],
            "key": torch.from_numpy(np_state["state"]["key"].astype(np.int64)),
            "pos": int(np_state["state"]["pos"]),
            "has_gauss": int(np_state["has_gauss"]),
            "gauss": float(np_state["gauss"]),
        },
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state()
    return state


def restore_rng_state(state: dict[str, Any]) -> None:
    """Inverse of ``capture_rng_state`` (on the current CUDA device, if any)."""
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    np_state = state["numpy"]
    np.random.set_state(
        {
            "bit_generator": np_state["bit_generator"],
            "state": {"key": np_state["key"].numpy().astype(np.uint32), "pos": np_state["pos"]},
            "has_gauss": np_state["has_gauss"],
            "gauss": np_state["gauss"],
        }
    )
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state(state["cuda"])
