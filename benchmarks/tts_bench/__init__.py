"""The parts of the TTS benchmark (``python -m benchmarks.tts_eval``), one section per module.

- :mod:`~benchmarks.tts_bench.data`: sentences, the real voices, corpus recordings;
- :mod:`~benchmarks.tts_bench.scoring`: WER, similarity, phoneme error rate, a row of scores;
- :mod:`~benchmarks.tts_bench.everyday`: everyday English with a real unseen voice (hylac-tts,
  Piper, espeak-ng), reference similarities of real speakers, the sampler sweep;
- :mod:`~benchmarks.tts_bench.corpus`: ground truth and the codec ceiling on corpus recordings;
- :mod:`~benchmarks.tts_bench.languages`: every language's length and phoneme error rate;
- :mod:`~benchmarks.tts_bench.curve`: WER and similarity over training checkpoints;
- :mod:`~benchmarks.tts_bench.quick`: the tiny random setup of ``--quick``;
- :mod:`~benchmarks.tts_bench.report`: the result, its targets and the report files.

The text-to-speech systems compared are adapters in :mod:`benchmarks.systems.speakers`.
"""
