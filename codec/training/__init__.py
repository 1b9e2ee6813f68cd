"""Training: the generic trainer (shared with ``tts``), the codec's task, losses,
discriminator, semantic teachers, data, the synthetic corpus and the phoneme front-end.

Public to ``tts`` (these names)::

    Trainer, TrainerConfig, TrainingTask, StepRunner, TrainResult, run_training
    load_config, ConfigError, JsonConfig           # recipes (YAML) and model configs (JSON)
    phonemize, phonemize_many, phoneme_ids, PHONEME_VOCAB   # (codec.LANGUAGES: the languages)

The codec's own recipe: :mod:`codec.training.task` (``hylac-codec train``).
"""

from codec.io.weights import JsonConfig
from codec.training.phonemes import PHONEME_VOCAB, phoneme_ids, phonemize, phonemize_many
from codec.training.recipe import ConfigError, load_config
from codec.training.step import StepRunner, TrainingTask
from codec.training.trainer import Trainer, TrainResult, run_training
from codec.training.trainer_config import TrainerConfig

__all__ = [
    "PHONEME_VOCAB",
    "ConfigError",
    "JsonConfig",
    "StepRunner",
    "TrainResult",
    "Trainer",
    "TrainerConfig",
    "TrainingTask",
    "load_config",
    "phoneme_ids",
    "phonemize",
    "phonemize_many",
    "run_training",
]
