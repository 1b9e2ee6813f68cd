"""The synthetic training corpus: voices (:mod:`.voices`), sentences (:mod:`.sentences`),
speaking them (:mod:`.synthesis`) and the resumable, seeded builder (:mod:`.build`)."""

from codec.training.corpus.build import CorpusConfig, CorpusSummary, build_corpus
from codec.training.corpus.sentences import clean_sentence, load_sentences
from codec.training.corpus.synthesis import finish_audio, synthesize_many
from codec.training.corpus.voices import SPLITS, VOICES, Speaker, Voice, make_speakers

__all__ = ["SPLITS", "VOICES", "CorpusConfig", "CorpusSummary", "Speaker", "Voice", "build_corpus",
           "clean_sentence", "finish_audio", "load_sentences", "make_speakers", "synthesize_many"]
