import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from codec.training.data import (
    FRAME_SIZE,
    AudioDataset,
    AudioFileError,
    AudioItem,
    Utterance,
    collate_audio,
    detect_layout,
    load_items,
    probe_items,
)
from codec.training.phonemes import phoneme_ids


def _write(path: Path, seconds: float, sr: int = 16000, channels: int = 1, seed: int = 0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    x = (0.1 * rng.standard_normal((int(seconds * sr), channels))).astype(np.float32)
    sf.write(str(path), x, sr)
    return path


# ----------------------------------------------------------------------------- layouts


def test_libritts_layout_with_splits(tmp_path):
    root = tmp_path / "LibriTTS"
    for subset, spk, chap in [("train-clean-100", "19", "198"), ("dev-clean", "84", "121")]:
        for k in range(2):
            wav = _write(
                root / subset / spk / chap / f"{spk}_{chap}_000000_00000{k}.wav", 0.5, 24000
            )
            wav.with_name(wav.stem + ".normalized.txt").write_text(f"Sentence {k} of {spk}.\n")
            wav.with_name(wav.stem + ".original.txt").write_text("ignored")
    assert detect_layout(root) == "libritts"
    items = load_items(root)
    assert len(items) == 4
    assert {it.speaker for it in items} == {"libritts/19", "libritts/84"}
    assert all(it.lang == "en" and it.text.startswith("Sentence") for it in items)
    valid = load_items(root, split="valid")
    assert [it.speaker for it in valid] == ["libritts/84", "libritts/84"]
    assert len(load_items(root, split="train")) == 2
    # pointing at one subset folder works too
    assert len(load_items(root / "dev-clean")) == 2


def test_ljspeech_layout(tmp_path):
    root = tmp_path / "LJSpeech-1.1"
    _write(root / "wavs" / "LJ001-0001.wav", 0.3, 22050)
    _write(root / "wavs" / "LJ001-0002.wav", 0.3, 22050)
    (root / "metadata.csv").write_text(
        "LJ001-0001|Printing, in 1912, was new|Printing, in nineteen twelve, was new\n"
        "LJ001-0002|Only raw text|\n"
    )
    assert detect_layout(root) == "ljspeech"
    items = load_items(root)
    assert [it.text for it in items] == ["Printing, in nineteen twelve, was new", "Only raw text"]
    assert all(it.path.is_file() and it.speaker == "ljspeech" for it in items)
    with pytest.raises(ValueError, match="has no splits"):
        load_items(root, split="train")


def test_vctk_layouts(tmp_path):
    new = tmp_path / "VCTK-0.92"
    for mic in (1, 2):
        _write(new / "wav48_silence_trimmed" / "p225" / f"p225_001_mic{mic}.flac", 0.3, 48000)
    _write(new / "wav48_silence_trimmed" / "p315" / "p315_001_mic1.flac", 0.3, 48000)
    (new / "txt" / "p225").mkdir(parents=True)
    (new / "txt" / "p225" / "p225_001.txt").write_text("Please call Stella.\n")
    assert detect_layout(new) == "vctk"
    items = load_items(new)
    assert [(it.speaker, it.text) for it in items] == [
        ("vctk/p225", "Please call Stella."),
        ("vctk/p315", None),  # p315 has no transcripts in VCTK
    ]
    old = tmp_path / "VCTK-Corpus"
    _write(old / "wav48" / "p226" / "p226_002.wav", 0.3, 48000)
    (old / "txt" / "p226").mkdir(parents=True)
    (old / "txt" / "p226" / "p226_002.txt").write_text("Ask her to bring these things.")
    items = load_items(old)
    assert [(it.speaker, it.text) for it in items] == [
        ("vctk/p226", "Ask her to bring these things.")
    ]


def test_plain_folder_layout(tmp_path):
    _write(tmp_path / "a" / "x.wav", 0.2)
    _write(tmp_path / "b" / "c" / "y.flac", 0.2)
    _write(tmp_path / "z.ogg", 0.2)
    (tmp_path / "notes.txt").write_text("not audio")
    assert detect_layout(tmp_path) == "folder"
    items = load_items(tmp_path)
    assert [it.path.name for it in items] == ["x.wav", "y.flac", "z.ogg"]
    assert [it.speaker for it in items] == ["a", "c", "unknown"]
    assert all(it.text is None and it.phonemes is None for it in items)


def test_manifest_layout(tmp_path):
    _write(tmp_path / "audio" / "a.flac", 0.2, 24000)
    _write(tmp_path / "audio" / "b.flac", 0.2, 24000)
    recs = [
        {
            "path": "audio/a.flac",
            "text": "Hi.",
            "phonemes": "hˈaɪ",
            "lang": "en",
            "speaker": "s1",
            "duration": 0.2,
            "split": "train",
        },
        {
            "path": "audio/b.flac",
            "text": "Oui.",
            "phonemes": "wˈi",
            "lang": "fr",
            "speaker": "s2",
            "duration": 0.2,
            "split": "test",
        },
    ]
    (tmp_path / "manifest.jsonl").write_text("".join(json.dumps(r) + "\n" for r in recs))
    assert detect_layout(tmp_path) == "manifest"
    items = load_items(tmp_path / "manifest.jsonl")
    assert items == load_items(tmp_path)
    assert items[0] == Utterance(
        path=(tmp_path / "audio" / "a.flac").resolve(),
        text="Hi.",
        phonemes="hˈaɪ",
        lang="en",
        speaker="s1",
        duration=0.2,
    )
    assert [it.speaker for it in load_items(tmp_path, split="test")] == ["s2"]
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps(recs[0]) + "\n{not json\n")
    with pytest.raises(ValueError, match="bad.jsonl:2"):
        load_items(bad)


def test_bad_sources_are_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="nowhere"):
        load_items(tmp_path / "nowhere")
    with pytest.raises(ValueError, match="unknown layout"):
        load_items(tmp_path, layout="timit")
    with pytest.raises(ValueError, match="split must be"):
        load_items(tmp_path, split="dev")


# ----------------------------------------------------------------------------- dataset


@pytest.fixture
def files(tmp_path):
    return {
        "long": _write(tmp_path / "long.wav", 5.0, 16000, channels=2, seed=1),
        "short": _write(tmp_path / "short.flac", 0.5, 48000, seed=2),
    }


def test_dataset_is_a_function_of_index_and_seed(files):
    items = [Utterance(path=files["long"]), Utterance(path=files["short"])]
    ds = AudioDataset(items, segment_seconds=1.0)
    assert len(ds) == 2
    a = ds[(0, 7)]
    torch.manual_seed(123)  # global RNG state has no influence
    b = ds[(0, 7)]
    assert torch.equal(a.wav, b.wav)
    crops = {ds[(0, s)].wav[0, :100].sum().item() for s in range(6)}
    assert len(crops) >= 5, "different seeds give different crops"
    assert a.wav.shape == (1, 24000) and a.wav.dtype == torch.float32
    assert a.phoneme_ids.numel() == 0  # segments never carry a transcript
    # shorter than the segment: zero-padded at the end
    s = ds[(1, 0)]
    assert s.wav.shape == (1, 24000)
    assert torch.all(s.wav[:, 12000 + 10 :] == 0) and s.wav[:, : 12000 - 10].abs().sum() > 0
    with pytest.raises(TypeError, match="item_index, seed"):
        ds[0]


def test_whole_utterances_resampling_loudness_and_transcripts(files):
    ph = "hˈaɪ ðˈɛɹ"
    items = [
        Utterance(path=files["short"], phonemes=ph, speaker="s", lang="en"),
        Utterance(path=files["long"], phonemes=ph, speaker="t"),
    ]
    ds = AudioDataset(items, max_seconds=2.0)
    short = ds[(0, 0)]
    assert short.wav.shape == (1, 12000)  # 0.5 s at 48 kHz -> 24 kHz
    assert short.phoneme_ids.tolist() == phoneme_ids(ph)
    assert (short.speaker, short.lang, short.path) == ("s", "en", str(files["short"]))
    rms_db = 20 * torch.log10(short.wav.pow(2).mean().sqrt())
    assert abs(rms_db.item() + 20) < 0.1 and short.wav.abs().max() <= 0.99
    long = ds[(1, 0)]
    assert long.wav.shape == (1, 48000)  # cropped to max_seconds
    assert long.phoneme_ids.numel() == 0  # the crop no longer matches the transcript
    assert not torch.equal(long.wav, ds[(1, 1)].wav)
    # without loudness normalisation the same samples come back at their own level
    quiet = AudioDataset(items, max_seconds=2.0, loudness_db=None)[(0, 0)]
    scale = short.wav.norm() / quiet.wav.norm()
    assert scale > 1.2 and torch.allclose(quiet.wav * scale, short.wav, atol=1e-5)


def test_phonemize_missing(files):
    pytest.importorskip("ctypes")
    from codec.training.phonemes import phonemize

    try:
        expected = phoneme_ids(phonemize("hello there", "en"))
    except RuntimeError:
        pytest.skip("espeak-ng not installed (Debian package espeak-ng)")
    item = Utterance(path=files["short"], text="hello there", lang="en")
    assert AudioDataset([item])[(0, 0)].phoneme_ids.numel() == 0
    assert AudioDataset([item], phonemize_missing=True)[(0, 0)].phoneme_ids.tolist() == expected


def test_unreadable_files_are_named(tmp_path, files):
    bad = tmp_path / "broken.wav"
    bad.write_bytes(b"RIFF0000WAVEjunk")
    ds = AudioDataset([Utterance(path=bad)])
    with pytest.raises(AudioFileError, match="broken.wav"):
        ds[(0, 0)]
    good, errors = probe_items(
        [Utterance(path=files["short"]), Utterance(path=bad), Utterance(path=tmp_path / "gone.wav")]
    )
    assert [g.path for g in good] == [files["short"]]
    assert abs(good[0].duration - 0.5) < 1e-6
    assert len(errors) == 2 and "broken.wav" in errors[0] and "gone.wav" in errors[1]


# ----------------------------------------------------------------------------- batching


def test_collate_pads_to_frames():
    items = [
        AudioItem(torch.ones(1, 3000), torch.tensor([5, 6, 7]), "a", "en", "a.wav"),
        AudioItem(torch.ones(1, 100), torch.tensor([], dtype=torch.int64), "b", None, "b.wav"),
    ]
    b = collate_audio(items)
    assert b.wav.shape == (2, 1, 2 * FRAME_SIZE) and b.wav.dtype == torch.float32
    assert b.lengths.tolist() == [3000, 100]
    assert b.wav[0, 0, :3000].eq(1).all() and b.wav[0, 0, 3000:].eq(0).all()
    assert b.wav[1, 0, 100:].eq(0).all()
    assert b.phonemes.tolist() == [[5, 6, 7], [0, 0, 0]]
    assert b.phoneme_lengths.tolist() == [3, 0]
    assert b.speakers == ["a", "b"] and b.langs == ["en", None]
    moved = b.to("cpu")
    assert torch.equal(moved.wav, b.wav) and moved.speakers == b.speakers
    no_text = collate_audio([items[1]])
    assert no_text.phonemes.shape == (1, 0) and no_text.wav.shape == (1, 1, FRAME_SIZE)
    with pytest.raises(ValueError, match="empty"):
        collate_audio([])


def test_dataloader_end_to_end(files):
    ds = AudioDataset(
        [Utterance(path=files["long"]), Utterance(path=files["short"])], segment_seconds=0.5
    )
    keys = [(0, 11), (1, 12), (0, 13)]
    loader = torch.utils.data.DataLoader(ds, batch_size=3, sampler=keys, collate_fn=collate_audio)
    (batch,) = list(loader)
    assert batch.wav.shape == (3, 1, 7 * FRAME_SIZE)  # 12000 samples -> 7 frames
    assert batch.lengths.tolist() == [12000] * 3
    again = next(iter(loader))
    assert torch.equal(batch.wav, again.wav)
