"""hylac-tts serve: the OpenAI-compatible API (driven by the official ``openai`` client), streaming,
voices, codec endpoints, bad input, the worker pool, the console script and the browser page."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import numpy as np
import pytest
import soundfile as sf
import torch

from codec import FRAME_SIZE, CodecConfig, HybridCodec, load_latents, save_latents
from tts import Synthesizer, TTSModel
from tts.serve import ServerConfig, VoiceLibrary, create_app
from tts.serve.server import ServerThread
from tts.serve.voices import prepare_voice

# The random test model never ends an utterance by itself: each one stops at the length limit.
pytestmark = pytest.mark.filterwarnings("ignore:generation stopped at the length limit")
SR = 24000
FRAMES = 10  # max_seconds 0.8
CONFIG = ServerConfig(workers=1, max_queue=1, retry_after=7, max_seconds=0.8, max_input_chars=200,
                      max_body_bytes=512 * 1024)
CHROMIUM = Path("/usr/bin/chromium")


def tone(seconds: float, sr: int = SR, seed: int = 0) -> np.ndarray:
    g = np.random.default_rng(seed)
    t = np.arange(int(seconds * sr)) / sr
    return (0.3 * np.sin(2 * np.pi * 180 * t) + 0.05 * g.standard_normal(t.shape)).astype(np.float32)


def wav_bytes(seconds: float, sr: int = SR) -> bytes:
    buf = io.BytesIO()
    sf.write(buf, tone(seconds, sr), sr, format="WAV")
    return buf.getvalue()


@pytest.fixture(scope="module")
def synth(one_torch_thread: None, tiny_synth: Synthesizer) -> Synthesizer:
    """The tiny test model, run on one torch thread while this module's server uses it."""
    return tiny_synth


@pytest.fixture(scope="module")
def url(synth) -> str:
    voices = VoiceLibrary(CONFIG.max_voices)
    voices.add(prepare_voice(synth, "alice", "test", torch.from_numpy(tone(3.2))[None], SR))
    with ServerThread(create_app(synth, CONFIG, voices, "hylac-tts-test")) as base:
        yield base


@pytest.fixture(scope="module")
def client(url):
    from openai import OpenAI

    return OpenAI(base_url=f"{url}/v1", api_key="not-checked", max_retries=0)


def speech(url: str, timeout: float = 120, **body: object) -> httpx.Response:
    payload = {"model": "hylac-tts-test", "input": "Hello there.", "voice": "alice", **body}
    return httpx.post(f"{url}/v1/audio/speech", json=payload, timeout=timeout)


def health(url: str) -> dict:
    return httpx.get(f"{url}/health", timeout=30).json()


def wait_for(predicate, what: str, tries: int = 600) -> None:
    """Poll until ``predicate()`` holds (a bounded number of 50 ms polls; nothing is timed)."""
    for _ in range(tries):
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError(f"never happened: {what}")


class Gate:
    """Counts generated frames; frame ``hold_at + 1`` waits until :meth:`open` (or 60 s)."""

    def __init__(self, model: TTSModel, hold_at: int) -> None:
        self.model, self.hold_at = model, hold_at
        self.frames = 0
        self.waiting = threading.Event()
        self._open = threading.Event()
        original = model.sample_acoustic

        def counting(*args, **kwargs):
            if self.frames >= self.hold_at and not self._open.is_set():
                self.waiting.set()
                self._open.wait(60)
            self.frames += 1
            return original(*args, **kwargs)

        model.sample_acoustic = counting

    def open(self) -> None:
        self._open.set()

    def remove(self) -> None:
        self.open()
        del self.model.sample_acoustic


@pytest.fixture
def gate(synth):
    made: list[Gate] = []

    def install(hold_at: int) -> Gate:
        made.append(Gate(synth.model, hold_at))
        return made[-1]

    yield install
    for g in made:
        g.remove()


# --------------------------------------------------------------------------- the OpenAI API


def test_health_models_and_page(url):
    h = health(url)
    assert h["status"] == "ok" and h["voices"] == ["alice"] and h["workers"] == 1
    assert {"wav", "pcm", "flac"} <= set(h["formats"]) and "en" in h["languages"]
    models = httpx.get(f"{url}/v1/models").json()
    assert [m["id"] for m in models["data"]] == ["hylac-tts-test"]
    page = httpx.get(url)
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert '<textarea id="text"' in page.text and 'id="voice"' in page.text


def test_openai_client_speaks_wav_and_the_same_request_gives_the_same_audio(client):
    def create(**extra):
        return client.audio.speech.create(model="hylac-tts-test", voice="alice", input="Hello there.",
                                          response_format="wav", **extra).content

    first = create()
    audio, sr = sf.read(io.BytesIO(first))
    assert sr == SR and len(audio) == FRAMES * FRAME_SIZE
    assert create() == first  # the default seed
    assert create(extra_body={"seed": 3}) != first
    # OpenAI's own model names work as aliases; flac is a whole-file encoding.
    flac = client.audio.speech.create(model="tts-1", voice={"id": "alice"}, input="Hello there.",
                                      response_format="flac", extra_body={"language": "fr", "steps": 2, "cfg": 1.0})
    audio, sr = sf.read(io.BytesIO(flac.content))
    assert sr == SR and len(audio) == FRAMES * FRAME_SIZE


def test_openai_client_streaming_response_delivers_pcm_in_chunks(client):
    with client.audio.speech.with_streaming_response.create(model="hylac-tts-test", voice="alice",
                                                            input="Bonjour.", response_format="pcm",
                                                            extra_body={"language": "fr"}) as response:
        assert response.headers["transfer-encoding"] == "chunked"
        assert response.headers["content-type"].startswith("audio/L16")
        chunks = list(response.iter_bytes())
    assert sum(map(len, chunks)) == FRAMES * FRAME_SIZE * 2


def test_first_audio_arrives_while_later_frames_are_still_being_made(url, gate):
    g = gate(hold_at=1)  # frame 2 waits until the test has read the first audio
    payload = {"model": "hylac-tts-test", "input": "Hello there.", "voice": "alice", "language": "en",
               "response_format": "wav"}
    with httpx.stream("POST", f"{url}/v1/audio/speech", json=payload, timeout=120) as r:
        assert r.status_code == 200
        parts = r.iter_raw()
        head = next(parts)
        assert g.frames == 1  # the first audio is here while frame 2 cannot be made
        assert g.waiting.wait(60)
        g.open()
        body = head + b"".join(parts)
    assert head[:4] == b"RIFF" and len(head) >= 44 + 2 * FRAME_SIZE
    audio, sr = sf.read(io.BytesIO(body))  # a streamed WAV of unknown length still reads
    assert sr == SR and len(audio) == FRAMES * FRAME_SIZE


def test_a_client_that_disconnects_frees_its_worker(url, gate):
    g = gate(hold_at=2)
    payload = {"model": "hylac-tts-test", "input": "Hello there.", "voice": "alice", "response_format": "pcm"}
    with httpx.stream("POST", f"{url}/v1/audio/speech", json=payload, timeout=120) as r:
        parts = r.iter_raw()
        next(parts)
        assert g.waiting.wait(60)  # frame 3 is being made
    g.open()  # the client is gone: the worker stops after the frame in hand
    wait_for(lambda: health(url)["running"] == 0, "the worker was freed")
    assert g.frames == 3
    assert speech(url).status_code == 200  # and it serves the next request


def test_requests_beyond_the_queue_get_503_with_retry_after(url, gate):
    g = gate(hold_at=1)
    results: dict[str, httpx.Response] = {}
    first = threading.Thread(target=lambda: results.setdefault("running", speech(url)))
    first.start()
    assert g.waiting.wait(60)
    second = threading.Thread(target=lambda: results.setdefault("queued", speech(url)))
    second.start()
    wait_for(lambda: health(url)["queued"] == 1, "the second request waits in the queue")
    busy = speech(url)
    g.open()
    first.join(120)
    second.join(120)
    assert busy.status_code == 503 and busy.headers["retry-after"] == "7"
    assert "the server is busy" in busy.json()["error"]["message"]
    assert results["running"].status_code == 200 and results["queued"].status_code == 200


BAD_REQUESTS = {
    "empty input": ({"input": "   "}, 400, "input is empty"),
    "long input": ({"input": "a" * 201}, 400, "input is 201 characters long; the limit is 200"),
    "format": ({"response_format": "aac"}, 400, "unsupported response_format 'aac'; supported: wav, pcm"),
    "language": ({"language": "tlh"}, 400, "unsupported language 'tlh'; supported: en, fr"),
    "steps": ({"steps": 100000}, 400, "steps must be between 1 and 64, got 100000"),
    "cfg": ({"cfg": -1}, 400, "cfg must be between 0 and 10, got -1"),
    "seed": ({"seed": -5}, 400, "seed must be between 0 and 4294967295, got -5"),
    "speed": ({"speed": 1.5}, 400, "speed 1.5 cannot be honoured"),
    "speed range": ({"speed": 9}, 400, "speed must be between 0.25 and 4"),
    "type": ({"input": 5}, 400, "input: Input should be a valid string"),
    "extra field": ({"volume": 3}, 400, "volume: extra field not allowed"),
    "instructions": ({"instructions": "whisper"}, 400, "instructions are not supported"),
    "sse": ({"stream_format": "sse"}, 400, "stream_format 'sse' is not supported"),
    "model": ({"model": "gpt-9"}, 404, "model 'gpt-9' is not served here; use 'hylac-tts-test'"),
    "voice": ({"voice": "bobby"}, 404, "unknown voice 'bobby'; known voices: alice"),
}


@pytest.mark.parametrize("case", sorted(BAD_REQUESTS))
def test_bad_requests_are_4xx_json_naming_the_problem(url, case):
    body, status, message = BAD_REQUESTS[case]
    r = speech(url, **body)
    assert r.status_code == status, r.text
    error = r.json()["error"]
    assert message in error["message"] and error["type"]


def test_malformed_oversized_and_missing_bodies(url):
    post = f"{url}/v1/audio/speech"
    r = httpx.post(post, content=b'{"model": "hylac-tts-test", "input": ', headers={"content-type": "application/json"})
    assert r.status_code == 400 and r.json()["error"]["message"].startswith("malformed JSON body")
    r = httpx.post(post, json={"input": "Hi"})
    assert r.status_code == 400 and "model: Field required" in r.json()["error"]["message"]
    big = b"x" * (600 * 1024)
    r = httpx.post(post, content=big, headers={"content-type": "application/json"})
    assert r.status_code == 413 and "larger than the server's limit of 0.5 MiB" in r.json()["error"]["message"]
    r = httpx.post(post, content=(big[i:i + 65536] for i in range(0, len(big), 65536)),  # chunked: no length
                   headers={"content-type": "application/json"})
    assert r.status_code == 413
    assert httpx.get(f"{url}/v1/nothing").json()["error"]["message"] == "Not Found"


# --------------------------------------------------------------------------- voices and codec


def test_an_uploaded_voice_is_encoded_once_and_then_speaks(url, synth, monkeypatch):
    files = {"file": ("bob.wav", wav_bytes(3.2, 16000), "audio/wav")}
    r = httpx.post(f"{url}/v1/voices", data={"name": "bob"}, files=files, timeout=120)
    assert r.status_code == 201, r.text
    assert r.json()["id"] == "bob" and abs(r.json()["seconds"] - 3.2) < 0.01
    assert [v["id"] for v in httpx.get(f"{url}/v1/voices").json()["data"]] == ["alice", "bob"]
    encodes = []
    real = HybridCodec.encode
    monkeypatch.setattr(HybridCodec, "encode", lambda *a, **k: encodes.append(1) or real(*a, **k))
    assert speech(url, voice="bob").status_code == 200
    assert encodes == []  # the voice's latents were kept, not recomputed
    r = httpx.post(f"{url}/v1/voices", data={"name": "bob"}, files=files)
    assert r.status_code == 409 and "voice 'bob' already exists" in r.json()["error"]["message"]


@pytest.mark.parametrize("case", ["text", "short", "name", "no file", "too big"])
def test_bad_voice_uploads(url, case):
    data, files = {"name": "carol"}, {"file": ("carol.wav", wav_bytes(3.2), "audio/wav")}
    expected = {
        "text": (400, "upload 'carol.wav': not a readable audio file (a text file"),
        "short": (400, "voice prompt is 0.50 s long; at least 1 s"),
        "name": (400, "voice name '../etc' is not allowed"),
        "no file": (400, "file: Field required"),
        "too big": (413, "larger than the server's limit"),
    }[case]
    if case == "text":
        files = {"file": ("carol.wav", b"hello, I am not a recording", "audio/wav")}
    elif case == "short":
        files = {"file": ("carol.wav", wav_bytes(0.5), "audio/wav")}
    elif case == "name":
        data = {"name": "../etc"}
    elif case == "no file":
        files = {}
    elif case == "too big":
        files = {"file": ("carol.wav", wav_bytes(12.0), "audio/wav")}
    r = httpx.post(f"{url}/v1/voices", data=data, files=files or None, timeout=120)
    assert r.status_code == expected[0], r.text
    assert expected[1] in r.json()["error"]["message"]
    assert "carol" not in health(url)["voices"]


def test_codec_endpoints_round_trip_and_validate(url, synth, tmp_path):
    audio = wav_bytes(1.0, 16000)
    r = httpx.post(f"{url}/v1/codec/encode", files={"file": ("clip.wav", audio, "audio/wav")}, timeout=120)
    assert r.status_code == 200 and r.headers["content-disposition"] == 'attachment; filename="clip.hylat"'
    (tmp_path / "clip.hylat").write_bytes(r.content)
    latents, info = load_latents(tmp_path / "clip.hylat", synth.codec)
    assert info.num_samples == SR and info.original_sample_rate == 16000 and latents.num_frames == 13
    r = httpx.post(f"{url}/v1/codec/decode", files={"file": ("clip.hylat", r.content)}, timeout=120)
    assert r.status_code == 200 and r.headers["content-type"] == "audio/wav"
    decoded, sr = sf.read(io.BytesIO(r.content))
    assert sr == SR and len(decoded) == SR  # exactly the original length
    expected = synth.codec.decode(latents)[0, 0].numpy()
    np.testing.assert_allclose(decoded, expected, atol=2 / 32768)
    # Wrong inputs, each named.
    r = httpx.post(f"{url}/v1/codec/encode", files={"file": ("notes.txt", b"just text")})
    assert r.status_code == 400 and "upload 'notes.txt': not a readable audio file (a text file" in r.json()["error"]["message"]
    r = httpx.post(f"{url}/v1/codec/decode", files={"file": ("clip.wav", audio)})
    assert r.status_code == 400 and "RIFF/WAV" in r.json()["error"]["message"]
    torch.manual_seed(5)
    other = HybridCodec(CodecConfig.tiny()).eval()
    save_latents(tmp_path / "other.hylat", other.encode(torch.from_numpy(tone(1.0)), SR), other)
    r = httpx.post(f"{url}/v1/codec/decode", files={"file": ("other.hylat", (tmp_path / "other.hylat").read_bytes())})
    assert r.status_code == 400 and "upload 'other.hylat': written by codec" in r.json()["error"]["message"]
    r = httpx.post(f"{url}/v1/codec/decode", files={"file": ("clip.hylat", b"")}, data={"response_format": "mp3"})
    assert r.status_code == 400 and "supported: wav, flac" in r.json()["error"]["message"]


# --------------------------------------------------------------------------- one command, and a browser


@pytest.fixture(scope="module")
def model_dir(synth: Synthesizer, tiny_tts_dir: Path) -> Path:
    """The test model as a folder (named ``model``), for the server started as its own process."""
    return tiny_tts_dir


@pytest.fixture(scope="module")
def voices_dir(tmp_path_factory) -> Path:
    voices = tmp_path_factory.mktemp("voices")
    sf.write(str(voices / "dora.wav"), tone(3.2), SR)
    (voices / "readme.txt").write_text("not a voice; ignored")
    return voices


def test_serve_starts_with_one_command_and_stops_on_ctrl_c(model_dir, voices_dir):
    model, voices = model_dir, voices_dir
    cmd = [sys.executable, "-m", "tts", "serve", "--model", str(model), "--voices", str(voices), "--port", "0",
           "--max-seconds", "0.4"]
    proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        base = None
        for line in proc.stderr:
            if " on http://" in line:
                base = line.split(" on ")[1].split()[0]
                break
        assert base, "the server did not say where it listens"
        assert health(base)["voices"] == ["dora"] and health(base)["model"] == "model"
        r = speech(base, model="model", voice="dora", response_format="pcm")
        assert r.status_code == 200 and len(r.content) == 5 * FRAME_SIZE * 2
    finally:
        proc.send_signal(signal.SIGINT)
        rest = proc.communicate(timeout=60)[1]
    assert proc.returncode == 0, rest
    assert "POST /v1/audio/speech 200" in rest and "first byte after" in rest


def test_load_benchmark_runs_and_loses_nothing(model_dir, voices_dir, tmp_path):
    from benchmarks import serve_load

    rc = serve_load.main(["--clients", "1", "2", "--seconds", "0.5", "--model", str(model_dir), "--voices",
                          str(voices_dir), "--max-seconds", "0.4", "--out", str(tmp_path)])
    assert rc == 0
    result = json.loads((tmp_path / "serve_load.json").read_text())
    assert [lv["clients"] for lv in result["levels"]] == [1, 2]
    for lv in result["levels"]:
        assert lv["requests"] >= lv["clients"] and lv["errors"] == 0 and lv["identical"] == lv["requests"]
        assert lv["peak_rss_mb"] > 0
    assert "| clients |" in (tmp_path / "serve_load.md").read_text()


def test_serve_refuses_bad_settings_with_usage_errors(tmp_path, capsys):
    from tts.cli import main

    assert main(["serve", "--workers", "0"]) == 2
    assert "workers must be between 1 and 64, got 0" in capsys.readouterr().err
    assert main(["serve", "--voices", str(tmp_path / "none")]) == 2
    assert "is not a folder" in capsys.readouterr().err


@pytest.mark.skipif(not CHROMIUM.is_file(), reason="Debian's chromium is not installed (/usr/bin/chromium); "
                                                  "scripts/setup_system.sh base installs it")
def test_browser_page_plays_streamed_speech_in_headless_chromium(url):
    playwright = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    shots = Path(os.environ.get("HYLAC_SCREENSHOTS", "out/screenshots"))
    shots.mkdir(parents=True, exist_ok=True)
    args = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            "--autoplay-policy=no-user-gesture-required"]
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=args)
        try:
            page = browser.new_page()
            page.goto(url)
            page.wait_for_selector("body[data-ready='1']", timeout=60000)
            assert page.locator("#voice option").first.get_attribute("value") == "alice"
            page.fill("#text", "Hello from the browser.")
            page.click("#play")
            page.wait_for_selector("#status[data-state='done'], #status[data-state='error']", timeout=120000)
            result = page.evaluate("window.hylac")
            assert result["error"] is None and result["done"], result
            assert result["bytes"] == FRAMES * FRAME_SIZE * 2
            assert page.locator("#download").is_visible()
            wav = page.evaluate("""async () => {
                const blob = await (await fetch(document.getElementById('download').href)).arrayBuffer();
                return Array.from(new Uint8Array(blob.slice(0, 4)));
            }""")
            assert bytes(wav) == b"RIFF"
            shot = shots / "serve_page.png"
            page.screenshot(path=str(shot), full_page=True)
            print(f"screenshot: {shot.resolve()}")
        finally:
            browser.close()
    assert shot.stat().st_size > 0

