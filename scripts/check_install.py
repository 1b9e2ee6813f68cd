"""After `make`'s install step: prove that the installed stack loads and computes.

Exits 1 with one clear line naming what is broken (a torch build that does not load,
a package missing from the lock, ...) instead of a linker error deep inside a test run.
"""

from __future__ import annotations

import importlib
import sys

CHECKS = ("torch", "numpy", "soundfile", "soxr", "safetensors", "transformers", "librosa")


def main() -> int:
    for name in CHECKS:
        try:
            importlib.import_module(name)
        except Exception as err:  # noqa: BLE001 - any failure to load is the message
            print(f"install check: cannot import {name} ({type(err).__name__}: {err}). "
                  f"Rebuild the environment: rm -rf .venv && make test", file=sys.stderr)
            return 1
    try:
        import numpy as np
        import torch

        from codec.io.audio import resample

        x = np.sin(np.arange(4410, dtype=np.float32) * 0.05)
        y = resample(x, 44100, 24000)
        spec = torch.stft(torch.from_numpy(y), 512, 128, window=torch.hann_window(512), return_complex=True)
        assert y.shape == (2400,) and spec.abs().sum() > 0
    except Exception as err:  # noqa: BLE001
        print(f"install check: torch {torch.__version__} is installed but does not compute "
              f"({type(err).__name__}: {err})", file=sys.stderr)
        return 1
    print(f"install check: torch {torch.__version__}, {len(CHECKS)} packages load, resampling and STFT work")
    return 0


if __name__ == "__main__":
    sys.exit(main())
