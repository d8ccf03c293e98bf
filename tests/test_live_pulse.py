"""Live mode through real sound devices: a private PulseAudio server.

The agent runs as `python main.py` (and `--text`) with its microphone and
speaker on virtual PulseAudio devices (tests/pulse.py): PortAudio opens
ALSA's default device, which the pulse plugin routes to our server. The test
plays the JFK clip into the microphone, records the speaker, and stops the
agent with Ctrl-C (SIGINT). The LLM is the local OpenAI-compatible test
server (tests/sse_server.py), so the reply is known and quick.

Needs: pulseaudio, pulseaudio-utils, libasound2-plugins, libportaudio2
(.ci/run installs them). Skipped only where pulseaudio is not installed.
"""
from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import yaml

from pulse import FEED, MIC, RECORD_RATE, SPEAKER, PulseServer, missing_tools
from sse_server import REPLY, ChatServer

REPO = Path(__file__).resolve().parents[1]
SPEECH = Path(__file__).resolve().parents[2] / "shared" / "speech"
JFK = SPEECH / "faster-whisper_jfk.flac"  # 11 s: "And so my fellow Americans, ask not what your country ..."
JFK_WORDS = "ask not what your country can do for you"
INTERRUPTION = SPEECH / "coqui-ai-TTS_LJ001-0002.wav"  # 1.9 s: "in being comparatively modern."
STORY = ("Once upon a time, a lighthouse keeper lived alone on a rocky island far out at sea. "
         "Every night he climbed the long spiral stairs to light the great lamp for the passing ships. "
         "One stormy winter evening, a small boat appeared in the waves below his window. "
         "He ran down to the shore with a lantern and a coil of rope, shouting into the wind. "
         "The sailors were cold and frightened, but they were all alive.")
SILENCE_DBFS = -70.0  # a null sink's monitor is digital silence; anything spoken is far above this
SPEECH_DBFS = -45.0

pytestmark = pytest.mark.timeout(150)


# --- fixtures: every process they start is ended in teardown ---------------------
@pytest.fixture(scope="module")
def pulse(tmp_path_factory):
    missing = missing_tools()
    if missing:
        hint = f"missing {', '.join(missing)}: apt-get install pulseaudio pulseaudio-utils libasound2-plugins"
        if os.environ.get("CI"):
            pytest.fail(f"CI must run the live tests; {hint}")  # .ci/run installs them
        pytest.skip(f"PulseAudio is not installed ({hint})")
    server = PulseServer(tmp_path_factory.mktemp("pulse"))
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def llm():
    with ChatServer(delay_s=0.01) as server:
        yield server


def as_wav16(clip: Path, folder: Path) -> Path:
    """A clip as 16-bit mono WAV: paplay mis-times the 24-bit stereo FLAC (plays 11 s in 4)."""
    import soundfile as sf

    if not clip.is_file():
        pytest.fail(f"speech clip missing: expected {clip} (the shared/ folder beside the repo)")
    audio, rate = sf.read(str(clip), dtype="float32", always_2d=True)
    path = folder / f"{clip.stem}.wav"
    sf.write(str(path), audio.mean(axis=1), rate, subtype="PCM_16")
    return path


@pytest.fixture
def jfk_wav(tmp_path) -> Path:
    return as_wav16(JFK, tmp_path)


def _as_from_a_terminal() -> None:
    """Ctrl-C reaches the agent as it would from a terminal, even when these tests run in a
    background job, whose children inherit SIGINT ignored (then Python never sees it)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


class Agent:
    """`python main.py ...` in its own process group, output to files (no pipe can fill up)."""

    def __init__(self, args: list[str], env: dict[str, str], folder: Path, stdin=subprocess.DEVNULL):
        self.stdout_path, self.stderr_path = folder / "agent.stdout", folder / "agent.stderr"
        with open(self.stdout_path, "wb") as out, open(self.stderr_path, "wb") as err:
            self.process = subprocess.Popen([sys.executable, "main.py", *args], cwd=REPO, env=env, stdin=stdin,
                                            stdout=out, stderr=err, start_new_session=True,
                                            preexec_fn=_as_from_a_terminal)

    @property
    def stdout(self) -> str:
        return self.stdout_path.read_text(errors="replace")

    @property
    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace")

    def alive(self) -> bool:
        return self.process.poll() is None

    def interrupt(self, timeout: float = 30) -> int:
        """Ctrl-C, as a terminal sends it: SIGINT to the process group."""
        os.killpg(self.process.pid, signal.SIGINT)
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:  # say where the shutdown stopped (agent.log logs each step)
            log = self.stdout_path.parent / "agent.log"
            steps = log.read_text(errors="replace")[-2000:] if log.exists() else "(no agent.log)"
            raise AssertionError(f"still running {timeout:g} s after Ctrl-C\n{self.describe()}\n--- agent.log\n{steps}")

    def kill(self) -> None:
        if self.alive():
            try:
                os.killpg(self.process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.process.wait(timeout=10)

    def describe(self) -> str:
        return f"exit code {self.process.poll()}\n--- stdout\n{self.stdout[-3000:]}\n--- stderr\n{self.stderr[-3000:]}"


@pytest.fixture
def agents():
    started: list[Agent] = []

    def start(*args, **kwargs) -> Agent:
        agent = Agent(*args, **kwargs)
        started.append(agent)
        return agent

    yield start
    for agent in started:
        agent.kill()


def agent_config(folder: Path, llm: ChatServer, greet: bool) -> Path:
    data = yaml.safe_load((REPO / "config.yaml").read_text(encoding="utf-8"))
    data["llm"]["base_url"] = llm.base_url
    data["turn"]["greet"] = greet
    data["audio"]["input_device"] = data["audio"]["output_device"] = None  # ALSA's default: our pulse server
    data["log"] = {"app": str(folder / "agent.log"), "turns": str(folder / "turns.jsonl")}
    path = folder / "config.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


def read_turns(path: Path) -> list[dict]:
    import json

    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def wait_until(condition, timeout: float, what: str, agent: Agent | None = None, interval: float = 0.2):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        if agent is not None and not agent.alive():
            pytest.fail(f"the agent exited while waiting for {what}: {agent.describe()}")
        time.sleep(interval)
    pytest.fail(f"timed out after {timeout} s waiting for {what}" + (f": {agent.describe()}" if agent else ""))


def wait_for_devices(pulse: PulseServer, agent: Agent, mic: bool, steady_s: float = 3.0, timeout: float = 90):
    """Until the agent holds its speaker (and mic) open, steadily: PortAudio's device scan opens them briefly."""
    speaker_index = pulse.device_index("sinks", SPEAKER)
    mic_index = pulse.device_index("sources", MIC)
    since = [None]

    def open_steadily():
        streams = pulse.streams(agent.process.pid)
        ready = speaker_index in streams["playing"] and (not mic or mic_index in streams["recording"])
        if not ready:
            since[0] = None
            return False
        since[0] = since[0] or time.monotonic()
        return time.monotonic() - since[0] >= steady_s

    wait_until(open_steadily, timeout, "the agent to open its audio devices", agent, interval=0.25)


def spoken_lines(stdout: str) -> str:
    """The agent's printed lines ("agent: ..."), joined: the pieces it spoke, in order."""
    return " ".join(line.removeprefix("agent:").strip() for line in stdout.splitlines() if line.startswith("agent:"))


def words(text: str) -> str:
    return " ".join(re.sub(r"[^a-z' ]", " ", text.lower()).split())


def loud_seconds(audio: np.ndarray, threshold_dbfs: float = SPEECH_DBFS) -> float:
    block = RECORD_RATE // 20
    frames = audio[: len(audio) // block * block].reshape(-1, block)
    if not len(frames):
        return 0.0
    levels = 20 * np.log10(np.maximum(np.sqrt(np.mean(np.square(frames, dtype=np.float64), axis=1)), 1e-6))
    return float(np.sum(levels > threshold_dbfs) / 20)


# --- the tests -----------------------------------------------------------------
@pytest.mark.slow
def test_live_conversation_through_pulseaudio(pulse, llm, jfk_wav, agents, tmp_path):
    recording = pulse.record(tmp_path / "speaker.raw")
    agent = agents(["--config", str(agent_config(tmp_path, llm, greet=False)), "--log", str(tmp_path / "turns.jsonl")],
                   pulse.env, tmp_path)
    wait_for_devices(pulse, agent, mic=True)

    said_at = recording.seconds  # where, in the speaker recording, the user starts talking
    player = pulse.play(jfk_wav, sink=FEED)
    assert player.wait(timeout=40) == 0, player.stderr.read()
    done_at = recording.seconds

    def answered():
        return [t for t in read_turns(tmp_path / "turns.jsonl") if "country" in t["user_text"].lower()]

    turns = wait_until(answered, 60, "a turn about 'your country' in the turn log", agent)
    time.sleep(1.5)  # the last of the reply through the sink's buffer
    assert agent.alive(), agent.describe()
    code = agent.interrupt()
    audio = recording.stop()

    assert code == 0, agent.describe()
    assert "Traceback" not in agent.stderr and "Traceback" not in agent.stdout, agent.describe()
    assert "bye" in agent.stdout.splitlines()[-1], agent.describe()
    everything = read_turns(tmp_path / "turns.jsonl")
    assert JFK_WORDS in words(" ".join(t["user_text"] for t in everything)), everything
    turn = turns[-1]
    assert turn["error"] is None
    assert turn["agent_text"] == REPLY and not turn["interrupted"]
    assert turn["playback_start"] is not None and turn["playback_start"] >= turn["speech_end"]
    assert f"you:   {turn['user_text']}" in agent.stdout  # what it heard, as the person sees it
    assert spoken_lines(agent.stdout) == REPLY  # printed as it is spoken, in pieces
    assert llm.chat_requests()[-1].messages[-1]["content"] == turn["user_text"]

    # The speaker: nothing but the echo probe's half second until the user spoke (no greeting),
    # then the reply, clearly audible.
    start = int(said_at * RECORD_RATE)
    before, after = audio[:start], audio[start:]
    assert loud_seconds(before, SILENCE_DBFS) <= 0.6, "the agent made a sound before anyone spoke"
    assert loud_seconds(after) >= 2.0, f"too little speech on the speaker: {loud_seconds(after):.2f} s"
    reply = audio[int(done_at * RECORD_RATE):]
    assert loud_seconds(reply) >= 2.0, f"too little speech after the clip: {loud_seconds(reply):.2f} s"


@pytest.mark.slow
def test_open_speaker_echo_and_barge_in_through_pulseaudio(pulse, jfk_wav, agents, tmp_path):
    """The speaker feeds back into the mic, as on open speakers (module-loopback, 60 ms, -12 dB).

    The agent must not take its greeting or its reply for the user, and the user must still be
    able to cut a long reply short: the cut reply is kept as heard, and the next request asks
    about the interruption.
    """
    interruption = as_wav16(INTERRUPTION, tmp_path)
    echo = pulse.loopback(f"{SPEAKER}.monitor", FEED, latency_ms=60, gain_db=-12.0)
    try:
        with ChatServer(reply=STORY, delay_s=0.01) as llm:
            recording = pulse.record(tmp_path / "speaker.raw")
            agent = agents(["--config", str(agent_config(tmp_path, llm, greet=True)),
                            "--log", str(tmp_path / "turns.jsonl")], pulse.env, tmp_path)
            wait_for_devices(pulse, agent, mic=True)
            wait_until(lambda: "agent:" in agent.stdout, 30, "the greeting", agent)
            time.sleep(2.0)  # the greeting's echo dies away

            assert pulse.play(jfk_wav, sink=FEED).wait(timeout=40) == 0
            asked_at = recording.seconds
            # Talk over the story once it has played for a while, echo and all.
            wait_until(lambda: loud_seconds(recording.audio()[int(asked_at * RECORD_RATE):]) >= 4.0, 60,
                       "four seconds of the reply on the speaker", agent)
            assert pulse.play(interruption, sink=FEED).wait(timeout=20) == 0

            def follow_up():  # requests made while the user paused mid-sentence may come before it
                return [r for r in llm.chat_requests() if "modern" in words(r.messages[-1]["content"])]

            (request, *_) = wait_until(follow_up, 60, "a request about the interruption", agent)
            code = agent.interrupt()
            recording.stop()
    finally:
        pulse.unload_module(echo)

    assert code == 0, agent.describe()
    assert "Traceback" not in agent.stderr, agent.describe()
    turns = read_turns(tmp_path / "turns.jsonl")
    first = turns[0]
    # The user's question made the first turn, not any echo ("ask" comes back as "asked" at times).
    assert "what your country can do for you" in words(first["user_text"]), turns
    assert first["interrupted"] and first["barge_in_at"] is not None, turns
    # Not cut off by its own voice: the barge-in came with the user, after seconds of echoed story.
    assert first["barge_in_at"] - first["playback_start"] >= 3.0, first
    assert first["playback_stopped_at"] - first["barge_in_at"] <= 0.5, first
    heard = first["heard_text"]
    assert heard and STORY.startswith(heard.rstrip("…")) and len(heard) < len(STORY), first

    messages = request.messages
    assert messages[-3] == {"role": "assistant", "content": heard}, messages[-3:]
    assert messages[-2]["role"] == "system" and "interrupted" in messages[-2]["content"], messages[-2]


@pytest.mark.slow
def test_text_mode_speaks_through_pulseaudio(pulse, llm, agents, tmp_path):
    """--text: greeting and reply printed and spoken; end of input ends it cleanly."""
    recording = pulse.record(tmp_path / "speaker.raw")
    agent = agents(["--text", "--config", str(agent_config(tmp_path, llm, greet=True)),
                    "--log", str(tmp_path / "turns.jsonl")], pulse.env, tmp_path, stdin=subprocess.PIPE)
    wait_for_devices(pulse, agent, mic=False, steady_s=1.0)
    agent.process.stdin.write(b"What's the weather like today?\n")
    agent.process.stdin.close()  # end of input: the agent finishes the reply, then exits
    code = agent.process.wait(timeout=90)
    time.sleep(1.0)
    audio = recording.stop()

    assert code == 0, agent.describe()
    assert "Traceback" not in agent.stderr, agent.describe()
    (turn,) = read_turns(tmp_path / "turns.jsonl")
    assert turn["user_text"] == "What's the weather like today?"
    assert turn["agent_text"] == REPLY and turn["error"] is None
    greeting = "Hi! What can I do for you?"
    assert spoken_lines(agent.stdout) == f"{greeting} {REPLY}"
    assert loud_seconds(audio) >= 2.5, f"too little speech on the speaker: {loud_seconds(audio):.2f} s"


@pytest.mark.slow
def test_list_devices_shows_the_pulse_devices(pulse):
    done = subprocess.run([sys.executable, "main.py", "--list-devices"], cwd=REPO, env=pulse.env,
                          capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    assert "default" in done.stdout and "pulse" in done.stdout.lower()


# --- no sound at all -------------------------------------------------------------
def no_audio_env(tmp_path: Path) -> dict[str, str]:
    """No sound server reachable, none autospawned; ALSA then finds only real cards (skip if any)."""
    if Path("/dev/snd").is_dir() and any(p.name.startswith("pcm") for p in Path("/dev/snd").iterdir()):
        pytest.skip("this machine has sound cards: 'no device' cannot be arranged")
    (tmp_path / "client.conf").write_text("autospawn = no\n")
    env = dict(os.environ)
    for key in ("PULSE_SINK", "PULSE_SOURCE", "PULSE_COOKIE"):
        env.pop(key, None)
    env.update({"PULSE_SERVER": f"unix:{tmp_path / 'nobody-here'}", "PULSE_CLIENTCONFIG": str(tmp_path / "client.conf"),
                "PIPEWIRE_REMOTE": str(tmp_path / "no-pipewire"), "JACK_NO_START_SERVER": "1",
                "XDG_RUNTIME_DIR": str(tmp_path)})
    return env


@pytest.mark.parametrize("mode", [[], ["--text"]], ids=["live", "text"])
def test_no_audio_device_is_a_one_line_error(tmp_path, mode):
    data = yaml.safe_load((REPO / "config.yaml").read_text(encoding="utf-8"))
    data["log"] = {"app": str(tmp_path / "agent.log"), "turns": str(tmp_path / "turns.jsonl")}
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump(data), encoding="utf-8")
    done = subprocess.run([sys.executable, "main.py", *mode, "--config", str(config)], cwd=REPO,
                          env=no_audio_env(tmp_path), capture_output=True, text=True, timeout=60,
                          stdin=subprocess.DEVNULL)
    assert done.returncode != 0
    assert "Traceback" not in done.stderr and "Traceback" not in done.stdout, done.stderr
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, done.stderr
    assert "--input" in errors[0], errors[0]
    if not mode:
        assert "--text" in errors[0], errors[0]


def test_list_devices_without_any_device_does_not_crash(tmp_path):
    done = subprocess.run([sys.executable, "main.py", "--list-devices"], cwd=REPO, env=no_audio_env(tmp_path),
                          capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert "Traceback" not in done.stderr, done.stderr
    assert done.returncode in (0, 2), done.stderr
    if done.returncode == 2:
        assert done.stderr.startswith("error:")
