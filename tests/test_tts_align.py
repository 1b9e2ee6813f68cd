"""Forced alignment of target frames to their text on the codec's phoneme recogniser."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from codec import FRAME_SIZE, LANGUAGES, CodecConfig, HybridCodec, Latents
from codec.training.phonemes import NUM_PHONEMES
from tts.align import PhonemeAligner, ctc_viterbi

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _planted(path: list[int], classes: int = 8) -> np.ndarray:
    """Log posteriors [S, classes] with 0.9 on each slot's planted class."""
    out = np.full((len(path), classes), math.log(0.1 / (classes - 1)))
    out[np.arange(len(path)), path] = math.log(0.9)
    return out


def test_viterbi_follows_the_planted_path_and_refuses_what_cannot_fit():
    # blank, 3 3, blank, 5, blank, 5 5 (a repeat needs the blank), 2 2, trailing blanks
    log_probs = _planted([0, 3, 3, 0, 5, 0, 5, 5, 2, 2, 0, 0])
    path = ctc_viterbi(log_probs, [3, 5, 5, 2])
    assert path.tolist() == [0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 3, 3]
    # The path is the labels' order whatever the posteriors say.
    flat = ctc_viterbi(np.zeros((6, 8)), [4, 1, 6])
    assert (np.diff(flat) >= 0).all() and flat[0] == 0 and flat[-1] == 2
    assert ctc_viterbi(np.zeros((2, 8)), [5, 5]) is None  # a repeat needs three slots
    assert ctc_viterbi(np.zeros((2, 8)), [1, 2, 3]) is None
    assert ctc_viterbi(np.zeros((4, 8)), []) is None


@pytest.fixture(scope="module")
def recogniser_codec() -> HybridCodec:
    torch.manual_seed(0)
    return HybridCodec(CodecConfig.tiny(phoneme_upsample=2, phoneme_classes=NUM_PHONEMES)).eval()


def test_aligner_table_is_the_codecs_recogniser(recogniser_codec):
    aligner = PhonemeAligner(recogniser_codec, len(LANGUAGES))
    codes = torch.tensor([[5, 77, 8000, 77]])
    latents = Latents(codes, torch.zeros(1, 4, 36, dtype=torch.long), 4 * FRAME_SIZE)
    expected = recogniser_codec.phoneme_log_probs(latents)[0].numpy()
    assert aligner.table.shape == (8192, 2, NUM_PHONEMES)
    np.testing.assert_allclose(aligner.table[codes[0].numpy()].reshape(8, -1), expected, rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="no phoneme recogniser"):
        PhonemeAligner(HybridCodec(CodecConfig.tiny()).eval(), len(LANGUAGES))


def test_pointers_follow_the_phonemes_the_codes_hold(recogniser_codec):
    """Codes planted to spell the text: each frame's pointer is the text index of the phoneme
    at its middle slot; the first frame is at the first symbol, the end past the text."""
    off = len(LANGUAGES)
    aligner = PhonemeAligner(recogniser_codec, off)
    table = np.full((8192, 2, NUM_PHONEMES), math.log(0.1 / (NUM_PHONEMES - 1)))
    for code in range(NUM_PHONEMES):
        table[code, :, code] = math.log(0.9)  # code c says phoneme c (0: the blank) in both slots
    aligner.table = table
    text = [0, off + 3, off + 5, off + 7]  # tag + three phonemes
    pointers = aligner.pointers(torch.tensor([3, 3, 0, 5, 7, 0]), text)
    assert pointers.tolist() == [1, 1, 1, 2, 3, 3, 4]
    # More phonemes than the frames' slots: a constant rate over the frames.
    long_text = [0, *[off + 3 + k for k in range(9)]]
    assert aligner.pointers(torch.tensor([3, 5]), long_text).tolist() == [1, 7, 10]  # frame 1 at 1 + floor(0.75 * 9)
