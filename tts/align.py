"""Where each target frame is in its text: CTC forced alignment on the codec's phoneme recogniser.

The codec's semantic codes are distilled from a phoneme CTC, and its recogniser reads each
frame's code alone (:meth:`codec.HybridCodec.phoneme_log_probs`), so one table of log
posteriors per code (``[K, upsample, classes]``) gives any utterance's posteriors without
running the codec. The Viterbi path of the utterance's own phonemes through them is the
alignment: for target frame ``j`` the *pointer* is the text index of the phoneme being spoken
at the frame's middle slot. The TTS model is told the pointer of the frame it predicts, and
learns to advance it itself (``TTSConfig.advance_classes``).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from codec import FRAME_SIZE, HybridCodec, Latents


def ctc_viterbi(log_probs: np.ndarray, labels: list[int], blank: int = 0) -> np.ndarray | None:
    """The most likely CTC path of ``labels`` through ``log_probs [S, C]``: per slot, the index
    of the label it emits or follows (leading blanks: 0) ``[S]``; None when the labels
    cannot fit in ``S`` slots."""
    n, s_len = len(labels), log_probs.shape[0]
    repeats = sum(1 for a, b in zip(labels, labels[1:], strict=False) if a == b)
    if n == 0 or s_len < n + repeats:
        return None
    ext = np.full(2 * n + 1, blank, dtype=np.int64)
    ext[1::2] = labels
    states = len(ext)
    # A label state may skip the blank before it unless it repeats the label two states back.
    skip = np.zeros(states, dtype=bool)
    skip[3::2] = ext[3::2] != ext[1:-2:2]
    neg = -np.inf
    score = np.full(states, neg)
    score[0] = log_probs[0, ext[0]]
    score[1] = log_probs[0, ext[1]]
    back = np.zeros((s_len, states), dtype=np.int8)  # 0: stay, 1: from s-1, 2: from s-2
    for t in range(1, s_len):
        stay = score
        step = np.concatenate([[neg], score[:-1]])
        jump = np.where(skip, np.concatenate([[neg, neg], score[:-2]]), neg)
        choices = np.stack([stay, step, jump])
        best = choices.argmax(0)
        score = choices[best, np.arange(states)] + log_probs[t, ext]
        back[t] = best
    end = states - 1 if score[-1] >= score[-2] else states - 2
    if not np.isfinite(score[end]):
        return None
    path = np.empty(s_len, dtype=np.int64)
    state = end
    for t in range(s_len - 1, -1, -1):
        path[t] = state
        state -= int(back[t, state])
    # State 2i + 1 emits label i; the blank after it (2i + 2) still follows label i.
    return np.maximum(path - 1, 0) // 2


class PhonemeAligner:
    """Frame pointers of target latents from a codec's phoneme recogniser.

    Args:
        codec: a codec exported with its phoneme teacher.
        symbol_offset: text token id of phoneme id 0 (the TTS front-end's language tags come
            first); tokens below it (the language tag) are not aligned.
    """

    def __init__(self, codec: HybridCodec, symbol_offset: int) -> None:
        codes = torch.arange(codec.semantic_codebook_size)[None]
        empty = torch.zeros(1, codes.shape[1], codec.config.acoustic_dim, dtype=torch.long)
        latents = Latents(codes, empty, codes.shape[1] * FRAME_SIZE, codec.config.acoustic_levels)
        upsample = codec.config.phoneme_upsample
        self.table = codec.phoneme_log_probs(latents)[0].view(codes.shape[1], upsample, -1).cpu().numpy()
        self.upsample = upsample
        self.symbol_offset = symbol_offset

    def pointers(self, semantic: Tensor, text: list[int]) -> Tensor:
        """Semantic codes ``[N]`` of an utterance and its text tokens (language tag first) ->
        ``[N + 1]`` int64: the text index each frame is at, then ``len(text)`` (past the end).
        Where the phonemes cannot be aligned (more of them than the frames' slots), a constant
        rate over the frames. The first frame is at the first symbol, where generation starts."""
        n = int(semantic.shape[0])
        symbols = [t - self.symbol_offset for t in text[1:]]
        log_probs = self.table[semantic.cpu().numpy()].reshape(n * self.upsample, -1)
        path = ctc_viterbi(log_probs, symbols) if n else None
        if path is None:
            places = (np.arange(n) + 0.5) / max(n, 1)
            at = 1 + np.floor(places * len(symbols)).astype(np.int64)
        else:
            at = 1 + path[np.arange(n) * self.upsample + self.upsample // 2]
        if n:
            at[0] = 1  # generation starts every utterance at its first symbol
        return torch.from_numpy(np.concatenate([at, [len(text)]]).astype(np.int64))
