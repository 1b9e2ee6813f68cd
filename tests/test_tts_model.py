"""TTS network: text front-ends, shapes, target-only losses, KV-cache generation, learning."""

from __future__ import annotations

import warnings

import pytest
import torch

from codec import FRAME_SIZE, LANGUAGES, Latents
from tts.config import SamplingConfig, TTSConfig
from tts.generate import FrameGenerator, generate_latents
from tts.model import TTSBatch, TTSModel
from tts.text import TextFrontend

A = 36

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _model(**overrides) -> TTSModel:
    torch.manual_seed(0)
    return TTSModel(TTSConfig.tiny(semantic_dim=16, **overrides))


def _grid(shape, gen):
    return torch.randint(0, 21, shape, generator=gen).float() / 10 - 1


def _batch(seed=0, p=(4, 6, 5), l_=(7, 3, 5), n=(8, 5, 9)) -> TTSBatch:
    g = torch.Generator().manual_seed(seed)
    b = len(p)
    pm, lm, nm = max(p), max(l_), max(n)
    return TTSBatch(
        torch.randint(0, 8192, (b, pm), generator=g), _grid((b, pm, A), g), torch.tensor(p),
        torch.randint(0, 60, (b, lm), generator=g), torch.tensor(l_),
        torch.randint(0, 8192, (b, nm), generator=g), _grid((b, nm, A), g), torch.tensor(n),
    )


def _prompt(frames=6, seed=0) -> Latents:
    g = torch.Generator().manual_seed(seed)
    return Latents(torch.randint(0, 8192, (1, frames), generator=g), torch.randint(0, 21, (1, frames, A), generator=g),
                   frames * FRAME_SIZE)


# ----------------------------------------------------------------------------- text
@pytest.mark.parametrize("kind", ["phonemes", "bytes"])
def test_frontend_encodes_every_language_with_its_tag(kind):
    fe = TextFrontend(kind)
    samples = {"en": "Hello world", "fr": "Bonjour le monde", "es": "Hola mundo", "de": "Hallo Welt",
               "it": "Ciao mondo", "pt": "Olá mundo", "nl": "Hallo wereld", "hi": "नमस्ते दुनिया",
               "ar": "مرحبا بالعالم"}
    assert set(samples) == set(LANGUAGES)
    for lang, text in samples.items():
        ids = fe.encode(text, lang)
        assert ids[0] == fe.language_token(lang)
        assert len(ids) > 3
        assert all(len(LANGUAGES) <= i < fe.vocab_size for i in ids[1:])


def test_byte_frontend_is_utf8():
    fe = TextFrontend("bytes")
    ids = fe.encode("né", "fr")
    assert [i - len(LANGUAGES) for i in ids[1:]] == list("né".encode())


def test_phoneme_frontend_reads_ipa_like_espeak():
    fe = TextFrontend("phonemes")
    from codec.training import phonemize

    assert fe.encode("Hello world", "en") == fe.encode_phonemes(phonemize("Hello world", "en"), "en")


@pytest.mark.parametrize("kind", ["phonemes", "bytes"])
def test_frontend_rejects_bad_input(kind):
    fe = TextFrontend(kind)
    with pytest.raises(ValueError, match="unsupported language 'xx'"):
        fe.encode("hello", "xx")
    with pytest.raises(ValueError, match="empty"):
        fe.encode("   ", "en")
    with pytest.raises(ValueError, match="empty"):
        fe.encode("", "en")
    with pytest.raises(ValueError, match="must be a str"):
        fe.encode(None, "en")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="text front-end"):
        TextFrontend("words")


# ----------------------------------------------------------------------------- config
def test_config_round_trips_and_rejects_unknown_keys(tmp_path):
    cfg = TTSConfig.tiny(codec="some/folder")
    cfg.save(tmp_path / "c.json")
    assert TTSConfig.from_json(tmp_path / "c.json") == cfg
    with pytest.raises(ValueError, match="unknown TTS config key"):
        TTSConfig.from_dict({"hidden": 3})
    with pytest.raises(ValueError, match="backbone"):
        TTSConfig(backbone="gpt2")
    with pytest.raises(ValueError, match="steps"):
        SamplingConfig(steps=0)
    with pytest.raises(ValueError, match="temperature"):
        SamplingConfig(temperature=-1)


# ----------------------------------------------------------------------------- training pass
@pytest.mark.parametrize("backbone", ["mistral", "llama"])
def test_shapes_through_the_model(backbone):
    model = _model(backbone=backbone)
    batch = _batch()
    out = model(batch)
    for v in (out.loss, out.semantic_loss, out.flow_loss, out.semantic_accuracy):
        assert v.dim() == 0 and torch.isfinite(v)
    assert out.num_frames == 8 + 5 + 9
    # An untrained semantic head is near uniform over 8192 codes + EOA.
    assert abs(out.semantic_loss.item() - torch.log(torch.tensor(8193.0)).item()) < 1.0
    out.loss.backward()
    assert all(p.grad is not None for p in model.parameters() if p.requires_grad)
    embeds, mask, audio_pos = model._pack(batch)
    assert embeds.shape == (3, 22, 32)
    assert mask.sum(1).tolist() == [22, 17, 22]
    assert audio_pos.tolist() == [13, 11, 12]


def test_loss_ignores_padding():
    model = _model().eval()
    batch = _batch()
    gen = torch.Generator().manual_seed(3)
    ref = model(batch, generator=gen).loss
    # Change everything beyond each item's lengths: the loss must not move.
    noisy = _batch(seed=5)
    for name in ("prompt", "text", "target"):
        lengths = getattr(batch, f"{name}_lengths")
        for field in [f for f in vars(batch) if f.startswith(name) and not f.endswith("lengths")
                      and getattr(batch, f) is not None]:
            t, other = getattr(batch, field).clone(), getattr(noisy, field)
            for i, n in enumerate(lengths.tolist()):
                t[i, n:] = other[i, n:]
            setattr(batch, field, t)
    gen = torch.Generator().manual_seed(3)
    torch.testing.assert_close(model(batch, generator=gen).loss, ref)


def test_loss_counts_target_frames_and_eoa_only():
    """Prompt frames are inputs, never targets: the semantic loss sees N + 1 classes per item."""
    model = _model().eval()
    batch = _batch(p=(4,), l_=(3,), n=(5,))
    with torch.no_grad():
        model.semantic_head.weight.zero_()
        model.semantic_head.bias.zero_()
        # Make EOA and the target codes certain: then only those positions are in the loss.
        model.semantic_head.bias[model.config.eoa_index] = 50.0
    out = model(batch)
    # 5 target positions cost ~50 each (EOA wins), the EOA position costs ~0: mean 50 * 5 / 6.
    assert abs(out.semantic_loss.item() - 50 * 5 / 6) < 0.1


def test_a_few_training_steps_lower_the_loss():
    model = _model()
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    batch = _batch()
    gen = torch.Generator().manual_seed(0)
    losses = []
    for _ in range(25):
        out = model(batch, generator=gen)
        opt.zero_grad()
        out.loss.backward()
        opt.step()
        losses.append(out.loss.item())
    assert losses[-1] < 0.5 * losses[0], losses
    assert out.semantic_accuracy > 0.5


def test_alignment_loss_is_ctc_of_the_frame_states_against_the_text():
    """With ``align_loss_weight`` the states that predict the frames learn where in the
    text the speech is (CTC to the text's symbols, the language tag left out)."""
    assert _model().align_head is None and _model()(_batch()).align_loss is None
    model = _model(align_loss_weight=1.0, align_upsample=2)
    batch = _batch(l_=(7, 3, 5), n=(8, 5, 9))
    out = model(batch, generator=torch.Generator().manual_seed(1))
    plain = _model()(batch, generator=torch.Generator().manual_seed(1))
    assert out.align_loss is not None and float(out.align_loss) > 0
    assert float(out.loss) == pytest.approx(float(plain.loss) + float(out.align_loss), rel=1e-4)
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    first = float(out.align_loss)
    for _ in range(30):
        out = model(batch)
        opt.zero_grad()
        out.loss.backward()
        opt.step()
    assert float(out.align_loss) < 0.5 * first


def _cued(**overrides) -> TTSModel:
    model = _model(progress_dim=8, pointer_window=3, progress_rate=0.7, **overrides)
    with torch.no_grad():  # zero at the start: give the cues weight so the checks mean something
        for layer in (model.text_progress, model.frame_progress, model.pointer_proj):
            layer.weight.normal_(std=0.1)
    return model


def test_place_cues_are_the_same_in_training_and_generation():
    """With place cues the text and target-frame inputs carry their place in the whole;
    generation spreads the frames' places over ``expected_frames``, and a target of that
    length packs into exactly the inputs generation feeds."""
    model = _cued()
    text_len = 11
    n = model.expected_frames(text_len)
    assert n == round(0.7 * 10)
    batch = _batch(p=(4,), l_=(text_len,), n=(n,))
    embeds, mask, audio_pos = model._pack(batch)
    prefix = model.prefix_embeddings(batch.prompt_semantic, batch.prompt_acoustic, batch.text)
    lengths = torch.tensor([text_len])
    frames = [model.embed_frames(batch.target_semantic[:, k:k + 1], batch.target_acoustic[:, k:k + 1],
                                 model.frame_cues(batch.text, lengths, torch.tensor([[(k + 1.5) / n]])))
              for k in range(n)]
    torch.testing.assert_close(embeds, torch.cat([prefix, *frames], dim=1))
    feats = model.progress_features(torch.tensor([0.0, 0.5, 1.0]))
    assert feats.shape == (3, 8) and torch.allclose(feats[0], torch.tensor([0.0] * 4 + [1.0] * 4))


def test_pointer_window_reads_the_symbols_around_a_constant_rate():
    """The pointer at place x reads text symbols 1 + floor(x (L - 1)) +- 1; the language tag
    (position 0) and positions past the text are nothing."""
    model = _model(pointer_window=3)
    with torch.no_grad():
        model.text_embed.weight.copy_(torch.arange(model.text_embed.num_embeddings)[:, None].float()
                                      .expand_as(model.text_embed.weight))
        model.pointer_proj.weight.zero_()
        h = model.config.hidden_size
        for w in range(3):  # output channel w reads window slot w's first channel
            model.pointer_proj.weight[w, w * h] = 1.0
    text = torch.tensor([[50, 11, 12, 13, 14, 15, 0, 0]])  # tag + 5 symbols, padded
    cues = model.frame_cues(text, torch.tensor([6]), torch.tensor([[0.0, 0.5, 0.99, 1.5]]))
    assert cues[0, :, :3].tolist() == [[0, 11, 12], [12, 13, 14], [14, 15, 0], [14, 15, 0]]


def test_place_cues_start_at_zero_and_learn():
    """A model given place cues starts as the same model without them (weights loaded from
    it, the cues' own left at their zero start) and then trains them."""
    plain, cued = _model(), _model(progress_dim=8, pointer_window=3)
    missing = cued.load_state_dict(plain.state_dict(), strict=False).missing_keys
    assert sorted(missing) == ["frame_progress.weight", "pointer_proj.weight", "text_progress.weight"]
    batch = _batch()
    a = plain(batch, generator=torch.Generator().manual_seed(2)).loss
    out = cued(batch, generator=torch.Generator().manual_seed(2))
    torch.testing.assert_close(out.loss, a)
    out.loss.backward()
    for layer in (cued.text_progress, cued.frame_progress, cued.pointer_proj):
        assert layer.weight.grad.abs().sum() > 0
    with pytest.raises(ValueError, match="progress_dim"):
        TTSConfig.tiny(progress_dim=3)
    with pytest.raises(ValueError, match="pointer_window"):
        TTSConfig.tiny(pointer_window=2)


def test_kv_cache_generation_with_place_cues_equals_full_recomputation():
    model = _cued().eval()
    text = TextFrontend("phonemes").encode("Hello there", "en")
    sampling = SamplingConfig(max_seconds=1.2, temperature=0.0, steps=2)
    runs = []
    for use_cache in (True, False):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            runs.append(generate_latents(model, _prompt(), text, sampling, torch.Generator().manual_seed(3),
                                         use_cache=use_cache))
    assert torch.equal(runs[0].semantic, runs[1].semantic) and runs[0].num_frames == 15
    assert torch.equal(runs[0].acoustic_codes, runs[1].acoustic_codes)


def _advancing(**overrides) -> TTSModel:
    model = _model(progress_dim=8, pointer_window=3, advance_classes=4, **overrides)
    with torch.no_grad():
        for layer in (model.text_progress, model.frame_progress, model.pointer_proj):
            layer.weight.normal_(std=0.1)
    return model


def test_aligned_pointer_packs_into_what_generation_feeds():
    """With an advance head the target frame k's input carries the window at frame k + 1's
    pointer, the [AUDIO] token the first symbol's: what generation feeds when its pointer
    moves the same way."""
    model = _advancing()
    batch = _batch(p=(4,), l_=(7,), n=(5,))
    pointer = torch.tensor([[1, 1, 3, 4, 6, 7]])  # frames 0-4, then past the end
    batch.target_pointer = pointer
    embeds, _, _ = model._pack(batch)
    prefix = model.prefix_embeddings(batch.prompt_semantic, batch.prompt_acoustic, batch.text)
    lengths = torch.tensor([7])
    n = model.expected_frames(7)
    frames = [model.embed_frames(batch.target_semantic[:, k:k + 1], batch.target_acoustic[:, k:k + 1],
                                 model.frame_cues(batch.text, lengths, torch.tensor([[(k + 1.5) / n]]),
                                                  pointer[:, k + 1:k + 2]))
              for k in range(5)]
    # Generation spreads the progress features over expected_frames; training over the target.
    batch.target_lengths = torch.tensor([n])
    if n == 5:
        torch.testing.assert_close(embeds, torch.cat([prefix, *frames], dim=1))
    with pytest.raises(ValueError, match="target_pointer must be"):
        model._pack(TTSBatch(**{**vars(batch), "target_pointer": pointer[:, :3]}))
    with pytest.raises(ValueError, match="needs the frames' pointer"):
        model(_batch())


def test_advance_loss_is_the_clamped_step_of_the_pointer():
    model = _advancing()
    batch = _batch(p=(4, 5), l_=(9, 4), n=(4, 3))
    batch.target_pointer = torch.tensor([[1, 1, 7, 8, 9], [1, 2, 3, 4, 0]])  # 1 -> 7 is clamped to 3
    out = model(batch, generator=torch.Generator().manual_seed(0))
    assert out.advance_loss is not None and out.advance_loss > 0
    out.loss.backward()
    assert model.advance_head.weight.grad.abs().sum() > 0
    # A head certain of the true steps has no advance loss; steps past the last class count as it.
    for steps, pointer in ((1, [[1, 2, 3, 4, 5], [1, 2, 3, 4, 0]]), (3, [[1, 5, 9, 13, 17], [1, 4, 7, 10, 0]])):
        with torch.no_grad():
            model.advance_head.weight.zero_()
            model.advance_head.bias.copy_(torch.where(torch.arange(4) == steps, 50.0, -50.0))
        batch.target_pointer = torch.tensor(pointer)
        assert float(model(batch).advance_loss) < 1e-6
    for bad in (dict(advance_classes=3), dict(advance_classes=1, pointer_window=3),
                dict(advance_classes=3, pointer_window=3, text_frontend="bytes")):
        with pytest.raises(ValueError, match="advance_classes"):
            TTSConfig.tiny(**bad)


def test_generation_moves_the_pointer_by_the_sampled_advance():
    model = _advancing().eval()
    with torch.no_grad():
        model.advance_head.weight.zero_()
        model.advance_head.bias.copy_(torch.tensor([-50.0, -50.0, 50.0, -50.0]))  # always 2
    text = TextFrontend("phonemes").encode("Hello there", "en")
    gen = FrameGenerator(model, _prompt(), text, SamplingConfig(max_seconds=1.2, temperature=0.0, steps=2))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        frames = list(gen)
    assert gen.pointers == [min(1 + 2 * k, len(text)) for k in range(len(frames))]


def test_kv_cache_generation_with_an_advance_head_equals_full_recomputation():
    model = _advancing().eval()
    text = TextFrontend("phonemes").encode("Hello there", "en")
    sampling = SamplingConfig(max_seconds=1.2, temperature=0.9, steps=2)
    runs = []
    for use_cache in (True, False):
        gen = FrameGenerator(model, _prompt(), text, sampling, torch.Generator().manual_seed(3), use_cache=use_cache)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            runs.append((Latents.cat(list(gen)), gen.pointers))
    (a, pa), (b, pb) = runs
    assert pa == pb and len(set(pa)) > 1
    assert torch.equal(a.semantic, b.semantic) and torch.equal(a.acoustic_codes, b.acoustic_codes)


# ----------------------------------------------------------------------------- generation
@pytest.mark.parametrize("temperature", [0.0, 0.9])
def test_kv_cache_generation_equals_full_recomputation(temperature):
    model = _model().eval()
    text = TextFrontend("phonemes").encode("Hello there", "en")
    sampling = SamplingConfig(max_seconds=1.6, temperature=temperature, top_k=20, steps=4)
    runs = []
    for use_cache in (True, False):
        gen = torch.Generator().manual_seed(7)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            runs.append(generate_latents(model, _prompt(), text, sampling, gen, use_cache=use_cache))
    cached, full = runs
    assert cached.num_frames == full.num_frames == 20
    assert torch.equal(cached.semantic, full.semantic)
    assert torch.equal(cached.acoustic_codes, full.acoustic_codes)
    assert cached.num_samples == 20 * FRAME_SIZE


def test_generation_stops_at_eoa():
    model = _model().eval()
    with torch.no_grad():
        model.semantic_head.bias[model.config.eoa_index] = 100.0
    frames = FrameGenerator(model, _prompt(), [0, 20, 21], SamplingConfig(min_frames=3))
    out = list(frames)
    assert len(out) == 3 and frames.stop_reason == "eoa"
    assert all(f.num_frames == 1 and f.num_samples == FRAME_SIZE for f in out)


def test_max_length_guard_stops_never_ending_output():
    model = _model().eval()
    with torch.no_grad():
        model.semantic_head.bias[model.config.eoa_index] = -100.0
    frames = FrameGenerator(model, _prompt(), [0, 20, 21], SamplingConfig(max_seconds=0.8, steps=1))
    with pytest.warns(UserWarning, match="length limit"):
        out = list(frames)
    assert len(out) == 10 and frames.stop_reason == "max_length"
    # The backbone's own limit caps it as well.
    small = _model(max_positions=16).eval()
    with torch.no_grad():
        small.semantic_head.bias[small.config.eoa_index] = -100.0
    with pytest.warns(UserWarning, match="length limit"):
        out = list(FrameGenerator(small, _prompt(4), [0, 20, 21], SamplingConfig(steps=1)))
    assert len(out) == 16 - (4 + 3 + 3)


def test_generated_frames_are_on_the_codec_grid():
    model = _model().eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        lat = generate_latents(model, _prompt(), [0, 30, 31], SamplingConfig(max_seconds=0.8, steps=2))
    assert lat.acoustic_codes.min() >= 0 and lat.acoustic_codes.max() <= 20
    assert lat.semantic.max() < 8192


def test_generation_rejects_bad_prompts():
    model = _model().eval()
    s = SamplingConfig()
    with pytest.raises(ValueError, match="batch of 2"):
        FrameGenerator(model, Latents(torch.zeros(2, 3, dtype=torch.long), torch.zeros(2, 3, A, dtype=torch.long),
                                      3 * FRAME_SIZE), [0, 9], s)
    with pytest.raises(ValueError, match="acoustic dims"):
        FrameGenerator(model, Latents(torch.zeros(1, 3, dtype=torch.long), torch.zeros(1, 3, 8, dtype=torch.long),
                                      3 * FRAME_SIZE), [0, 9], s)
    with pytest.raises(TypeError, match="codec.Latents"):
        FrameGenerator(model, torch.zeros(3), [0, 9], s)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="empty"):
        FrameGenerator(model, _prompt(), [], s)
    with pytest.raises(ValueError, match="positions"):
        FrameGenerator(model, _prompt(520), [0, 9, 9], s)


def test_top_k_and_eoa_masking():
    model = _model().eval()
    h = torch.randn(200, 32)
    logits = model.semantic_head(h)
    top = logits.topk(3, dim=-1).indices
    g = torch.Generator().manual_seed(0)
    picks = model.sample_semantic(h, 1.0, 3, allow_eoa=True, generator=g)
    assert (top == picks[:, None]).any(-1).all()
    with torch.no_grad():
        model.semantic_head.bias[model.config.eoa_index] = 1e4
    assert (model.sample_semantic(h, 0.0, 0, allow_eoa=False) != model.config.eoa_index).all()
    assert (model.sample_semantic(h, 0.0, 0, allow_eoa=True) == model.config.eoa_index).all()


def test_save_and_load_round_trip(tmp_path):
    model = _model().eval()
    model.save(tmp_path / "m")
    again = TTSModel.from_folder(tmp_path / "m")
    batch = _batch()
    g1, g2 = torch.Generator().manual_seed(1), torch.Generator().manual_seed(1)
    torch.testing.assert_close(again(batch, generator=g1).loss, model(batch, generator=g2).loss)
    with pytest.raises(FileNotFoundError, match="not a TTS model folder"):
        TTSModel.from_folder(tmp_path)
    (tmp_path / "bad").mkdir()
    model.config.save(tmp_path / "bad" / "config.json")
    (tmp_path / "bad" / "model.safetensors").write_bytes(b"garbage")
    with pytest.raises(ValueError, match="cannot read weights"):
        TTSModel.from_folder(tmp_path / "bad")


def test_semantic_table_starts_from_the_codec_codebook():
    model = _model()
    book = torch.randn(8192, 16) * 3
    model.init_semantic_from_codec(book)
    w = model.semantic_embed.weight
    torch.testing.assert_close(w / w.pow(2).mean().sqrt(), book / book.pow(2).mean().sqrt())
    with pytest.raises(ValueError, match="codebook"):
        model.init_semantic_from_codec(torch.randn(10, 16))
