"""Configuration of the TTS model (architecture + the codec it speaks) and of sampling."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from codec import CodecConfig
from codec.training import JsonConfig

BACKBONES = ("mistral", "llama")
TEXT_FRONTENDS = ("phonemes", "bytes")
SOLVERS = ("euler", "midpoint")
SCHEDULES = ("linear", "cosine")


def require(*checks: tuple[bool, str]) -> None:
    """Config validation as a table: ``ValueError`` with the message of the first failed check."""
    for ok, message in checks:
        if not ok:
            raise ValueError(message)


@dataclass
class TTSConfig(JsonConfig):
    """Architecture of a :class:`~tts.model.TTSModel` and the codec whose latents it models.

    The backbone is a decoder-only ``transformers`` Mistral/Llama model driven with
    ``inputs_embeds``; the flow head is a small bidirectional transformer over three
    tokens (hidden state, time, noisy acoustic vector). ``configs/tts_base.yaml`` scales
    it to a Ministral-3B-shaped backbone. Stored as JSON (strict: unknown keys are errors).
    """

    config_kind = "TTS"

    # Codec: a shipped name (``hylac-tiny``) or a folder; a relative folder is resolved
    # against the TTS checkpoint folder first. The latent hash pins the latent space (the
    # codec's encoder and quantizers), so the model works with any decoder fine-tune of it.
    codec: str = "hylac-tiny"
    codec_latent_hash: str = ""
    # The codec's latent layout (loading checks it against the codec); the defaults are
    # CodecConfig's, the layout of hylac-tiny.
    semantic_codebook_size: int = CodecConfig.semantic_codebook_size
    semantic_dim: int = CodecConfig.semantic_dim
    acoustic_dim: int = CodecConfig.acoustic_dim
    acoustic_levels: int = CodecConfig.acoustic_levels
    # Text front-end: ``phonemes`` (espeak-ng IPA) or ``bytes`` (UTF-8).
    text_frontend: str = "phonemes"
    # Backbone (defaults: the CPU-trainable hylac-tts-tiny).
    backbone: str = "mistral"
    hidden_size: int = 128
    num_layers: int = 4
    num_heads: int = 4
    num_kv_heads: int = 2
    head_dim: int | None = None
    intermediate_size: int = 384
    rope_theta: float = 10000.0
    rms_norm_eps: float = 1e-5
    max_positions: int = 1024
    # Flow-matching acoustic head.
    flow_dim: int = 96
    flow_layers: int = 2
    flow_heads: int = 4
    flow_mlp_ratio: float = 2.0
    # Share of training frames whose condition ``h`` is zeroed, so one network also
    # knows the unconditional velocity that classifier-free guidance needs.
    cond_dropout: float = 0.1
    # Noise draws per target frame in the flow loss: several draws per backbone pass
    # lower the variance of the loss for little compute (the head is small).
    flow_samples_per_frame: int = 2
    flow_loss_weight: float = 1.0
    semantic_loss_weight: float = 1.0
    # Auxiliary alignment loss: CTC from the hidden states that predict the target frames
    # to the text's symbols (``align_upsample`` CTC steps per frame). It asks every state to
    # know where in the text the speech is, which a decoder-only model otherwise has to
    # discover from the frame losses alone; 0 leaves the head out.
    align_loss_weight: float = 0.0
    align_upsample: int = 2
    # Place cues, so that each frame knows what text it should be saying from the start instead
    # of discovering the alignment from the frame losses alone. ``progress_dim``: sinusoidal
    # features of each input's place as a share of its whole (text symbol j of L at
    # (j + 0.5) / L; the input predicting target frame i of N at (i + 0.5) / N), projected into
    # the text and frame embeddings. ``pointer_window``: the embeddings of that many text
    # symbols (odd) around the one a constant speaking rate would be at, added to the frame
    # inputs. 0 leaves either out. Generation takes N = ``progress_rate`` frames per text
    # symbol (the language tag not counted): the corpus's median is 0.67.
    progress_dim: int = 0
    pointer_window: int = 0
    progress_rate: float = 0.7
    # Aligned pointer (needs ``pointer_window`` and the phoneme front-end): in training the
    # pointer window sits at the phoneme each target frame really holds (CTC forced alignment
    # on the codec's phoneme recogniser, :mod:`tts.align`), and an advance head learns from each
    # frame's state how many symbols the next frame moves on (``advance_classes`` classes: 0
    # .. ``advance_classes - 1``, the last one for that many or more); generation moves the
    # pointer by the sampled advance. 0: the pointer follows the constant rate above.
    advance_classes: int = 0
    # Voice prompt bounds (seconds).
    min_prompt_seconds: float = 1.0
    recommended_min_prompt_seconds: float = 3.0
    max_prompt_seconds: float = 30.0

    @property
    def eoa_index(self) -> int:
        """Index of the end-of-audio class in the semantic head (after the codebook)."""
        return self.semantic_codebook_size

    def __post_init__(self) -> None:
        require(
            (self.backbone in BACKBONES, f"backbone must be one of {BACKBONES}, got {self.backbone!r}"),
            (self.text_frontend in TEXT_FRONTENDS,
             f"text_frontend must be one of {TEXT_FRONTENDS}, got {self.text_frontend!r}"),
            (self.head_dim is not None or self.hidden_size % self.num_heads == 0,
             f"hidden_size={self.hidden_size} is not divisible by num_heads={self.num_heads}"),
            (self.num_heads % self.num_kv_heads == 0,
             f"num_heads={self.num_heads} is not a multiple of num_kv_heads={self.num_kv_heads}"),
            (self.flow_dim % self.flow_heads == 0,
             f"flow_dim={self.flow_dim} is not divisible by flow_heads={self.flow_heads}"),
            (0.0 <= self.cond_dropout < 1.0, f"cond_dropout must be in [0, 1), got {self.cond_dropout}"),
            (self.flow_samples_per_frame >= 1, "flow_samples_per_frame must be >= 1"),
            (self.align_loss_weight >= 0 and self.align_upsample >= 1,
             "align_loss_weight must be >= 0 and align_upsample >= 1"),
            (self.progress_dim >= 0 and self.progress_dim % 2 == 0 and self.progress_rate > 0,
             "progress_dim must be an even count >= 0 and progress_rate > 0"),
            (self.pointer_window >= 0 and (self.pointer_window == 0 or self.pointer_window % 2 == 1),
             f"pointer_window must be 0 or an odd count, got {self.pointer_window}"),
            (self.advance_classes == 0 or (self.advance_classes >= 2 and self.pointer_window > 0
                                           and self.text_frontend == "phonemes"),
             "advance_classes needs >= 2 classes, a pointer_window and the phoneme front-end"),
            (0 < self.min_prompt_seconds <= self.recommended_min_prompt_seconds <= self.max_prompt_seconds,
             "need 0 < min_prompt_seconds <= recommended_min_prompt_seconds <= max_prompt_seconds"),
            (self.max_positions >= 16, "max_positions must be >= 16"),
        )

    @classmethod
    def tiny(cls, **overrides: Any) -> TTSConfig:
        """A test-size model: runs a forward pass in milliseconds on a CPU."""
        base: dict[str, Any] = dict(
            hidden_size=32, num_layers=2, num_heads=4, num_kv_heads=2, intermediate_size=64,
            flow_dim=32, flow_layers=2, flow_heads=2, max_positions=512,
        )
        base.update(overrides)
        return cls(**base)


@dataclass
class SamplingConfig:
    """How frames are drawn at generation time.

    Attributes:
        steps: ODE solver steps per frame (Euler: one velocity evaluation each, midpoint: two).
        cfg: classifier-free guidance strength alpha (1.0 = no guidance).
        temperature: semantic-code sampling temperature (0 = greedy).
        top_k: keep only the k most likely semantic classes (0 = all).
        solver: ``euler`` or ``midpoint`` (two evaluations per step).
        schedule: ODE time grid, ``linear`` or ``cosine`` (denser near the noise end, like
            F5-TTS's sway sampling).
        max_seconds: generation stops after this much audio (guards never-ending output).
        min_frames: end-of-audio is not allowed before this many frames.
    """

    steps: int = 8
    cfg: float = 1.2
    temperature: float = 0.8
    top_k: int = 50
    solver: str = "euler"
    schedule: str = "linear"
    max_seconds: float = 30.0
    min_frames: int = 1

    def __post_init__(self) -> None:
        require(
            (self.steps >= 1, f"steps must be >= 1, got {self.steps}"),
            (self.cfg >= 0, f"cfg must be >= 0, got {self.cfg}"),
            (self.temperature >= 0, f"temperature must be >= 0, got {self.temperature}"),
            (self.top_k >= 0, f"top_k must be >= 0, got {self.top_k}"),
            (self.solver in SOLVERS, f"solver must be one of {SOLVERS}, got {self.solver!r}"),
            (self.schedule in SCHEDULES, f"schedule must be one of {SCHEDULES}, got {self.schedule!r}"),
            (self.max_seconds > 0, f"max_seconds must be > 0, got {self.max_seconds}"),
            (self.min_frames >= 0, f"min_frames must be >= 0, got {self.min_frames}"),
        )


@dataclass(frozen=True)
class Limits:
    """Ranges that user-facing entry points (``hylac-tts generate``, the server) accept.

    :class:`SamplingConfig` only rejects values that cannot work; these bounds also
    refuse values that would run for minutes for no audible gain (``steps=100000``).
    Each field is ``(low, high)``, both included.
    """

    steps: tuple[int, int] = (1, 64)
    cfg: tuple[float, float] = (0.0, 10.0)
    temperature: tuple[float, float] = (0.0, 5.0)
    top_k: tuple[int, int] = (0, 16384)
    max_seconds: tuple[float, float] = (0.08, 120.0)
    seed: tuple[int, int] = (0, 2**32 - 1)
    threads: tuple[int, int] = (0, 256)
    # hylac-tts finetune
    train_steps: tuple[int, int] = (1, 1_000_000)
    batch_size: tuple[int, int] = (1, 1024)
    lr: tuple[float, float] = (1e-7, 0.1)
    valid_fraction: tuple[float, float] = (0.0, 0.5)

    def problem(self, name: str, value: float) -> str | None:
        """``"must be between LOW and HIGH, got VALUE"`` when ``value`` is outside the range of ``name``."""
        low, high = getattr(self, name)
        if low <= value <= high:  # False for NaN too
            return None
        return f"must be between {_num(low)} and {_num(high)}, got {_num(value)}"

    def check(self, name: str, value: float) -> float:
        """``value`` if it is within the range of ``name``; otherwise a ``ValueError`` naming both."""
        problem = self.problem(name, value)
        if problem is not None:
            raise ValueError(f"{name} {problem}")
        return value


def _num(value: float) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


LIMITS = Limits()
#: Seed used when none is given, so the same command gives the same audio.
DEFAULT_SEED = 0
