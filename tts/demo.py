"""One sentence per language, spoken with a held-out voice from the corpus (``hylac-tts demo``)."""

from __future__ import annotations

from pathlib import Path

from codec import read_audio, read_manifest, write_audio

from .config import SamplingConfig
from .synthesizer import Synthesizer

DEMO_SENTENCES: dict[str, str] = {
    "en": "The weather is lovely today, so we are going for a walk by the river.",
    "fr": "Il fait beau aujourd'hui, alors nous allons nous promener au bord de la rivière.",
    "es": "Hoy hace buen tiempo, así que vamos a dar un paseo junto al río.",
    "de": "Heute ist schönes Wetter, also gehen wir am Fluss spazieren.",
    "it": "Oggi il tempo è bello, quindi andiamo a fare una passeggiata lungo il fiume.",
    "pt": "Hoje o tempo está bom, então vamos passear à beira do rio.",
    "nl": "Het is vandaag mooi weer, dus we gaan wandelen langs de rivier.",
    "hi": "आज मौसम अच्छा है, इसलिए हम नदी के किनारे टहलने जा रहे हैं।",
    "ar": "الطقس جميل اليوم، لذلك سنتمشى على ضفة النهر.",
}


def held_out_voices(manifest: str | Path, split: str = "test") -> dict[str, Path]:
    """For each language, the longest ``split`` recording (of 3 s or more when there is one)."""
    manifest = Path(manifest)
    if not manifest.is_file():
        raise FileNotFoundError(f"corpus manifest {str(manifest)!r} does not exist")
    best: dict[str, tuple[float, Path]] = {}
    for record in read_manifest(manifest, required=("path", "lang")):
        e = record.fields
        if e.get("split") != split:
            continue
        dur = float(e.get("duration", 0.0))
        if e["lang"] not in best or dur > best[e["lang"]][0]:
            best[e["lang"]] = (dur, record.path())
    if not best:
        raise ValueError(f"{manifest}: no recordings in split {split!r}")
    return {lang: path for lang, (_, path) in best.items()}


def speak_demo(synth: Synthesizer, manifest: str | Path, out: str | Path, split: str = "test",
               sampling: SamplingConfig | None = None, seed: int = 0, prefix: str = "tts") -> list[Path]:
    """Write ``out/<prefix>_<lang>.wav`` (and the prompt as ``out/<prefix>_<lang>_prompt.wav``)
    for every language that has a voice in ``split``; returns the generated files."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    voices = held_out_voices(manifest, split)
    written = []
    for lang, sentence in DEMO_SENTENCES.items():
        if lang not in voices:
            continue
        audio = synth.generate(sentence, lang, voices[lang], sampling=sampling, seed=seed)
        path = write_audio(out / f"{prefix}_{lang}.wav", audio.numpy(), synth.sample_rate, overwrite=True)
        prompt, info = read_audio(voices[lang], target_rate=None)
        write_audio(out / f"{prefix}_{lang}_prompt.wav", prompt, info.sample_rate, overwrite=True)
        written.append(path)
    return written

