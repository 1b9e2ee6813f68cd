"""Training data: (voice prompt, text, target) triples from a latent manifest.

The manifest is what ``hylac-codec encode-manifest`` writes: one JSON object per line
with the corpus fields (``text``, ``phonemes``, ``lang``, ``speaker``, ``split``, ...)
plus ``latents`` (a ``.hylat`` path relative to the manifest's folder) and
``num_frames``. An item pairs a target utterance with a *different* utterance of the
same speaker as its voice prompt; the prompt choice and crop come from the item seed.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import Tensor

from codec import FRAME_RATE, CodecStamp, Latents, load_latents, same_latent_space
from codec import read_manifest as codec_manifest

from .align import PhonemeAligner
from .model import TTSBatch
from .text import TextFrontend

log = logging.getLogger(__name__)


@dataclass
class DataConfig:
    """Where the latents are and how training pairs are cut (the ``data:`` config section).

    Attributes:
        manifest: latent manifest (``DIR/manifest.jsonl`` from ``hylac-codec encode-manifest``).
        train_split, valid_split: values of the manifest's ``split`` field.
        min_prompt_seconds, max_prompt_seconds: the prompt is a random crop of this length
            (or the whole prompt utterance when shorter).
        max_target_seconds: longer targets are left out (they cannot be cropped without
            cutting their text).
        exclude_speakers: speakers left out of training (e.g. a real voice kept for measuring
            fine-tuning on an unseen speaker).
    """

    manifest: str = "data/latents/manifest.jsonl"
    train_split: str = "train"
    valid_split: str = "valid"
    min_prompt_seconds: float = 3.0
    max_prompt_seconds: float = 8.0
    max_target_seconds: float = 8.0
    exclude_speakers: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not 0 < self.min_prompt_seconds <= self.max_prompt_seconds:
            raise ValueError("need 0 < min_prompt_seconds <= max_prompt_seconds")
        if self.max_target_seconds <= 0:
            raise ValueError("max_target_seconds must be > 0")


@dataclass
class TTSItem:
    """One training example (unpadded).

    Attributes:
        prompt_semantic: ``[P]`` int64; prompt_acoustic: ``[P, A]`` float grid values.
        text: ``[L]`` int64 token ids (language tag first).
        target_semantic: ``[N]`` int64; target_acoustic: ``[N, A]`` float grid values.
        target_pointer: ``[N + 1]`` int64 text index of each target frame, then the text
            length (from the dataset's aligner; None without one).
    """

    prompt_semantic: Tensor
    prompt_acoustic: Tensor
    text: Tensor
    target_semantic: Tensor
    target_acoustic: Tensor
    target_pointer: Tensor | None = None


def read_manifest(path: str | Path) -> list[dict]:
    """Entries of a latent manifest (read by :func:`codec.read_manifest`); a bad line is a
    ``ValueError`` naming it (``"<path>:<line>: ..."``)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"latent manifest {str(path)!r} does not exist "
                                "(make it with `hylac-codec encode-manifest`)")
    entries = []
    for record in codec_manifest(path, required=()):
        entry = record.fields
        # Speakers may be numbers, so presence is checked here rather than as required strings.
        missing = [k for k in ("latents", "lang", "speaker", "split") if k not in entry]
        if missing or not ("text" in entry or "phonemes" in entry):
            raise ValueError(f"{path}:{record.line}: missing field(s) {missing or ['text/phonemes']}")
        entries.append(entry)
    return entries


class LatentPairDataset:
    """Map-style dataset keyed by ``(item_index, item_seed)`` (the trainer's convention).

    Args:
        manifest: latent manifest path.
        split: which ``split`` to use.
        frontend: text front-end of the model (phonemes use the manifest's ``phonemes``
            field when present, otherwise espeak-ng).
        config: crop lengths.
        max_positions: the backbone's length limit; longer pairs are left out.
        codec: if given, every latent file must be in this codec's latent space.
        aligner: gives each target its frames' text pointer (models with an advance head).
    """

    def __init__(self, manifest: str | Path, split: str, frontend: TextFrontend, config: DataConfig,
                 max_positions: int, codec: CodecStamp | None = None, aligner: PhonemeAligner | None = None) -> None:
        self.root = Path(manifest).parent
        self.aligner = aligner
        self.config = config
        self.codec = codec
        entries = [e for e in read_manifest(manifest) if e["split"] == split]
        if not entries:
            raise ValueError(f"{manifest}: no utterances in split {split!r}")
        # Languages the text front-end has no tag for (a corpus may record others) and
        # excluded speakers are left out.
        excluded = set(config.exclude_speakers)
        kept = [e for e in entries if e["lang"] in frontend.languages and str(e["speaker"]) not in excluded]
        if len(kept) < len(entries):
            log.info("split %s: left out %d utterances of other languages or excluded speakers",
                     split, len(entries) - len(kept))
        entries = kept
        if not entries:
            raise ValueError(f"{manifest}: no utterances in split {split!r} in the model's languages")
        max_prompt = round(config.max_prompt_seconds * FRAME_RATE)
        max_target = round(config.max_target_seconds * FRAME_RATE)
        by_speaker: dict[str, list[int]] = {}
        for i, e in enumerate(entries):
            by_speaker.setdefault(str(e["speaker"]), []).append(i)
        self.entries: list[dict] = entries
        self.texts: list[list[int]] = []
        for e in entries:
            if frontend.kind == "phonemes" and e.get("phonemes"):
                self.texts.append(frontend.encode_phonemes(e["phonemes"], e["lang"]))
            else:
                self.texts.append(frontend.encode(e["text"], e["lang"]))
        self.partners: dict[int, list[int]] = {}
        self.targets: list[int] = []
        dropped = {"alone": 0, "long": 0}
        for i, e in enumerate(entries):
            frames = int(e.get("num_frames", 0)) or self._load(i).num_frames
            others = [j for j in by_speaker[str(e["speaker"])] if j != i]
            if not others:
                dropped["alone"] += 1
            elif frames > max_target or max_prompt + len(self.texts[i]) + frames + 3 > max_positions:
                dropped["long"] += 1
            else:
                self.partners[i] = others
                self.targets.append(i)
        if not self.targets:
            raise ValueError(f"{manifest}: no usable pairs in split {split!r} (speakers with a single "
                             f"utterance: {dropped['alone']}, targets too long: {dropped['long']})")
        if any(dropped.values()):
            log.info("split %s: left out %d utterances of single-utterance speakers and %d too long ones",
                     split, dropped["alone"], dropped["long"])

    def __len__(self) -> int:
        return len(self.targets)

    def _load(self, i: int) -> Latents:
        latents, info = load_latents(self.root / self.entries[i]["latents"])
        if self.codec is not None and not same_latent_space(info, self.codec):
            raise ValueError(f"{self.entries[i]['latents']}: written by codec {info.codec_name!r} "
                             f"(weights {info.codec_weights_sha256[:12]}…), not in the latent space of the "
                             f"model's codec {self.codec.name!r}; re-encode the corpus with it")
        return latents

    def __getitem__(self, key: tuple[int, int]) -> TTSItem:
        index, seed = key
        gen = torch.Generator().manual_seed(int(seed))
        target_i = self.targets[index]
        partners = self.partners[target_i]
        prompt_i = partners[int(torch.randint(len(partners), (1,), generator=gen))]
        target = self._load(target_i)
        prompt = self._load(prompt_i)
        lo = round(self.config.min_prompt_seconds * FRAME_RATE)
        hi = round(self.config.max_prompt_seconds * FRAME_RATE)
        length = min(prompt.num_frames, int(torch.randint(lo, hi + 1, (1,), generator=gen)))
        start = int(torch.randint(prompt.num_frames - length + 1, (1,), generator=gen))
        return TTSItem(
            prompt_semantic=prompt.semantic[0, start:start + length],
            prompt_acoustic=prompt.acoustic[0, start:start + length],
            text=torch.tensor(self.texts[target_i], dtype=torch.long),
            target_semantic=target.semantic[0],
            target_acoustic=target.acoustic[0],
            target_pointer=None if self.aligner is None else self.aligner.pointers(target.semantic[0],
                                                                                   self.texts[target_i]),
        )


def _pad(seqs: list[Tensor]) -> Tensor:
    return torch.nn.utils.rnn.pad_sequence(seqs, batch_first=True)


def collate(items: list[TTSItem]) -> TTSBatch:
    """Right-pad a list of items into a :class:`~tts.model.TTSBatch`."""
    if not items:
        raise ValueError("cannot collate an empty list of items")

    def lengths(seqs: list[Tensor]) -> Tensor:
        return torch.tensor([s.shape[0] for s in seqs], dtype=torch.long)

    prompt_sem = [it.prompt_semantic for it in items]
    text = [it.text for it in items]
    target_sem = [it.target_semantic for it in items]
    return TTSBatch(
        prompt_semantic=_pad(prompt_sem),
        prompt_acoustic=_pad([it.prompt_acoustic for it in items]),
        prompt_lengths=lengths(prompt_sem),
        text=_pad(text),
        text_lengths=lengths(text),
        target_semantic=_pad(target_sem),
        target_acoustic=_pad([it.target_acoustic for it in items]),
        target_lengths=lengths(target_sem),
        target_pointer=None if any(it.target_pointer is None for it in items)
        else _pad([it.target_pointer for it in items]),
    )
