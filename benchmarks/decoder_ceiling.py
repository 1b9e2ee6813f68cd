"""Where a source-filter hylac model loses quality: its output head's ceiling, and what its latents hold.

    python -m benchmarks.decoder_ceiling [--model hylac-tiny] [--data DIR_OR_MANIFEST ...]
        [--clips 9] [--max-seconds 3] [--control-steps 300] [--decoder-steps 250]
        [--out benchmarks/results/decoder_ceiling]

Every clip is scored (PESQ-WB, STOI, mel distance; on the input's timeline, as
`codec_quality.py` scores hylac) as reconstructed five ways:

- ``model``: encode and decode, as shipped.
- ``model, measured F0``: the decoder's own filters, pulses driven by the input's measured F0
  where it is voiced (what a perfect pitch prediction would add).
- ``fitted controls`` and ``fitted controls, measured F0``: the output head's filter controls
  (envelope and voicing per 10 ms step) fitted to the clip itself by gradient descent on the
  training's mel loss, starting from the decoder's, F0 predicted or measured. No decoder
  could do better at this step rate with this excitation: the head's ceiling.
- ``fitted decoder``: a copy of the decoder trained on these clips alone (their latents fixed,
  mel and pitch losses as in training). A decoder of this size exists that gets this much
  out of these very latents: a lower bound of what the latents carry, which shows whether
  the encoder or the decoder limits the model.

The clips are those of `codec_quality.py` (the corpus's held-out test voices and the bundled
clips; `--clips` evenly spaced picks). Fitting runs on the CPU unless `--device` says
otherwise. Writes `decoder_ceiling.json` and `decoder_ceiling.md` under `--out`.
"""

from __future__ import annotations

import argparse
import copy
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

import codec
from benchmarks.codec_quality import Clip, gather_clips
from benchmarks.common import Report, format_number, markdown_table
from codec import metrics as M
from codec.heads import SourceFilterHead
from codec.heads.dsp import estimate_f0
from codec.io.audio import prepare_waveform
from codec.training.losses import LossConfig, ReconstructionLoss, f0_loss

SAMPLE_RATE = 24000
SYSTEMS = ("model", "model, measured F0", "fitted controls", "fitted controls, measured F0", "fitted decoder")
METRICS = ("pesq_wb", "stoi", "mel_distance")


@dataclass
class Prepared:
    """One clip ready for the decoder: ``audio [1, 1, N]`` (24 kHz, N a multiple of the frame),
    decoder input ``z [1, T, D]``, measured ``f0 [1, T100]`` (Hz) and ``voiced [1, T100]``."""

    clip: Clip
    audio: Tensor
    z: Tensor
    f0: Tensor
    voiced: Tensor


@dataclass
class Result:
    """Per-clip scores of every reconstruction, and the losses of each fit."""

    clips: list[dict[str, Any]] = field(default_factory=list)
    fits: dict[str, list[float]] = field(default_factory=dict)

    def means(self) -> dict[str, dict[str, float]]:
        return {s: {m: float(np.mean([c[s][m] for c in self.clips])) for m in METRICS} for s in SYSTEMS}


def source_filter_head(model: codec.HybridCodec) -> SourceFilterHead:
    head = model.decoder.out
    if not isinstance(head, SourceFilterHead):
        raise ValueError(f"{model.name}: decoder head {model.config.head.kind!r} has no filter controls to "
                         "fit; this benchmark needs a source-filter model (head: {kind: source_filter})")
    return head


def prepare(model: codec.HybridCodec, clip: Clip) -> Prepared:
    """Encode a clip once; its latents stay fixed through every fit."""
    wav = prepare_waveform(torch.from_numpy(clip.audio), clip.sample_rate)
    n = wav.shape[-1] // codec.FRAME_SIZE * codec.FRAME_SIZE
    if n == 0:
        raise ValueError(f"{clip.id}: shorter than one {codec.FRAME_SIZE}-sample frame")
    wav = wav[..., :n].to(model.decoder.inp.weight.device)
    latents = model.encode(wav, SAMPLE_RATE)
    # encode() returns inference tensors; clones can enter autograd graphs as inputs.
    with torch.no_grad():
        z = model.quantizer.decode(latents.semantic.clone(), latents.acoustic_codes.clone())
        f0, voiced = estimate_f0(wav, model.config.patch_size)
    return Prepared(clip, wav, z, f0, voiced)


def render(model: codec.HybridCodec, p: Prepared, measured_f0: bool,
           ctl: Tensor | None = None) -> Tensor:
    """Audio ``[1, 1, N]`` from the decoder's controls, or from ``ctl`` in their place."""
    head = source_filter_head(model)
    h = model.decoder.features(p.z)
    predicted, own, _ = head.controls(h)
    f0 = torch.where(p.voiced, p.f0, predicted) if measured_f0 else predicted
    out, _ = head.synthesize(f0, own if ctl is None else ctl, head.init_state(h))
    return out


def fit_controls(model: codec.HybridCodec, p: Prepared, measured_f0: bool, steps: int,
                 loss_fn: ReconstructionLoss, lr: float = 0.05) -> tuple[Tensor, list[float]]:
    """Controls ``[1, T100, C]`` fitted to the clip (Adam on the mel loss), and the loss at
    the start and the end."""
    head = source_filter_head(model)
    with torch.no_grad():
        h = model.decoder.features(p.z)
        predicted, own, _ = head.controls(h)
    f0 = torch.where(p.voiced, p.f0, predicted) if measured_f0 else predicted
    ctl = own.clone().requires_grad_(True)
    opt = torch.optim.Adam([ctl], lr=lr)
    losses = []
    for _ in range(steps + 1):
        out, _ = head.synthesize(f0, ctl, head.init_state(h))
        loss = loss_fn(out, p.audio, with_stft=False)[0]
        losses.append(loss.item())
        if len(losses) > steps:
            break
        opt.zero_grad()
        loss.backward()
        opt.step()
    return ctl.detach(), [losses[0], losses[-1]]


def fit_decoder(model: codec.HybridCodec, clips: Sequence[Prepared], steps: int, loss_fn: ReconstructionLoss,
                lr: float = 1e-3, f0_weight: float = 40.0) -> tuple[codec.HybridCodec, list[float]]:
    """A copy of ``model`` whose decoder is trained on ``clips`` only (Adam, one step over all
    clips at a time; mel loss plus, as in training, the pitch loss), and the mean mel loss at
    the start and the end."""
    fitted = copy.deepcopy(model)
    head = source_filter_head(fitted)
    opt = torch.optim.Adam(fitted.decoder.parameters(), lr=lr)
    mels = []
    for i in range(steps + 1):
        total = 0.0
        opt.zero_grad()
        for p in clips:
            h = fitted.decoder.features(p.z)
            f0, ctl, _ = head.controls(h)
            out, _ = head.synthesize(f0, ctl, head.init_state(h))
            mel = loss_fn(out, p.audio, with_stft=False)[0]
            total += mel.item() / len(clips)
            if i < steps:
                ((mel + f0_weight * f0_loss(f0, p.f0, p.voiced)) / len(clips)).backward()
        mels.append(total)
        if i < steps:
            opt.step()
    return fitted, [mels[0], mels[-1]]


def score(p: Prepared, audio: Tensor) -> dict[str, float]:
    ref = p.audio[0, 0].cpu().numpy()
    est = audio[0, 0].detach().float().cpu().numpy()
    return {"pesq_wb": M.pesq_wb(ref, est, SAMPLE_RATE), "stoi": M.stoi(ref, est, SAMPLE_RATE),
            "mel_distance": M.mel_distance(ref, est, SAMPLE_RATE)}


def run(model: codec.HybridCodec, clips: Sequence[Clip], control_steps: int, decoder_steps: int,
        log: Any = print) -> Result:
    """Score every reconstruction of every clip (see the module docstring)."""
    source_filter_head(model)
    model.eval()
    loss_fn = ReconstructionLoss(LossConfig()).to(model.decoder.inp.weight.device)
    prepared = [prepare(model, c) for c in clips]
    result = Result(fits={"controls": [], "controls, measured F0": []})
    fitted, result.fits["decoder"] = fit_decoder(model, prepared, decoder_steps, loss_fn)
    log(f"fitted decoder: mel loss {result.fits['decoder'][0]:.3f} -> {result.fits['decoder'][1]:.3f}")
    for p in prepared:
        t0 = time.time()
        with torch.no_grad():
            row: dict[str, Any] = {"id": p.clip.id, "lang": p.clip.lang,
                                   "model": score(p, render(model, p, False)),
                                   "model, measured F0": score(p, render(model, p, True)),
                                   "fitted decoder": score(p, render(fitted, p, False))}
        for name, measured in (("fitted controls", False), ("fitted controls, measured F0", True)):
            ctl, losses = fit_controls(model, p, measured, control_steps, loss_fn)
            result.fits["controls" + name[len("fitted controls"):]].append(losses[1])
            with torch.no_grad():
                row[name] = score(p, render(model, p, measured, ctl))
        result.clips.append(row)
        log(f"{p.clip.id}: " + ", ".join(f"{s} {row[s]['pesq_wb']:.2f}/{row[s]['stoi']:.3f}" for s in SYSTEMS)
            + f" ({time.time() - t0:.0f} s)")
    return result


def report(result: Result, model_name: str, args: dict[str, Any], out: Path) -> Path:
    means = result.means()
    rows = [[s] + [format_number(means[s][m], 3 if m != "pesq_wb" else 2) for m in METRICS] for s in SYSTEMS]
    table = markdown_table(["reconstruction", "PESQ-WB", "STOI", "mel"], rows)
    data = {"model": model_name, "args": args, "means": means, "clips": result.clips, "fit_losses": result.fits}
    return Report("decoder_ceiling", f"Decoder ceiling: {model_name}").write(out, data, [
        f"{len(result.clips)} clips; controls fitted for {args['control_steps']} steps, the decoder for "
        f"{args['decoder_steps']} (`python -m benchmarks.decoder_ceiling`, see its docstring).", table])["md"]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="hylac-tiny", help="shipped name or model folder (source-filter head)")
    parser.add_argument("--data", nargs="*", help="folders or .jsonl manifests (default: the test voices)")
    parser.add_argument("--data-lang", default=None, help="language of audio found in --data folders")
    parser.add_argument("--clips", type=int, default=9, help="evenly spaced clips to use (default 9)")
    parser.add_argument("--max-seconds", type=float, default=3.0, help="cut each clip to this length")
    parser.add_argument("--control-steps", type=int, default=300, help="Adam steps fitting each clip's controls")
    parser.add_argument("--decoder-steps", type=int, default=250, help="Adam steps fitting the decoder")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/decoder_ceiling"))
    args = parser.parse_args(argv)
    if args.clips < 1:
        parser.error(f"--clips must be at least 1, got {args.clips}")
    if args.control_steps < 0 or args.decoder_steps < 0:
        parser.error("--control-steps and --decoder-steps must be >= 0")
    if args.max_seconds <= 0:
        parser.error(f"--max-seconds must be positive, got {args.max_seconds}")
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model = codec.load(args.model, device=args.device)
    try:
        source_filter_head(model)
    except ValueError as exc:
        parser.error(str(exc))
    clips = gather_clips(args.data, args.data_lang, args.clips, args.max_seconds)
    result = run(model, clips, args.control_steps, args.decoder_steps)
    path = report(result, args.model, {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
                  args.out)
    print(path.read_text())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
