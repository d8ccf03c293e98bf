"""A private PulseAudio server for tests: a virtual speaker and microphone.

    agent_out          a null sink: the agent's speaker; record agent_out.monitor
    mic_feed           a null sink the test plays speech into
    agent_mic          mic_feed.monitor remapped into a real source: the agent's microphone

Programs reach it through `server.env` (PULSE_SERVER, PULSE_SINK,
PULSE_SOURCE, ...): PortAudio opens ALSA's "default" device, which the
pulse plugin (Debian's libasound2-plugins) routes to this server while it
is running. Nothing touches the machine's own sound server: the socket,
runtime and state directories all live under the folder given.

    server = PulseServer(tmp_path).start()
    try: ...
    finally: server.stop()
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import numpy as np

SPEAKER = "agent_out"
FEED = "mic_feed"
MIC = "agent_mic"
RECORD_RATE = 16000
TOOLS = ("pulseaudio", "pactl", "paplay", "parec")


class PulseError(RuntimeError):
    pass


def missing_tools() -> list[str]:
    return [tool for tool in TOOLS if shutil.which(tool) is None]


class PulseServer:
    def __init__(self, root: Path):
        self.root = Path(root)
        self.runtime = self.root / "run"
        self.socket = self.runtime / "native"
        self.log_path = self.root / "pulseaudio.log"
        self.process: subprocess.Popen | None = None
        self._children: list[subprocess.Popen] = []

    # --- lifecycle -------------------------------------------------------
    @property
    def env(self) -> dict[str, str]:
        """Environment for programs that should use this server and its virtual devices."""
        env = dict(os.environ)
        for key in ("PULSE_COOKIE", "PULSE_PROP"):
            env.pop(key, None)
        env.update({
            "PULSE_SERVER": f"unix:{self.socket}",
            "PULSE_RUNTIME_PATH": str(self.runtime),
            "PULSE_STATE_PATH": str(self.root / "state"),
            "PULSE_CLIENTCONFIG": str(self.root / "client.conf"),
            "XDG_RUNTIME_DIR": str(self.runtime),
            "LC_ALL": "C",
            "PULSE_SINK": SPEAKER,
            "PULSE_SOURCE": MIC,
        })
        return env

    def start(self, timeout: float = 20.0) -> "PulseServer":
        for folder in (self.runtime, self.root / "state", self.root / "home"):
            folder.mkdir(parents=True, exist_ok=True)
        self.runtime.chmod(0o700)
        (self.root / "client.conf").write_text("autospawn = no\n")
        env = self.env
        env["HOME"] = str(self.root / "home")  # its cookie and state files, not the user's
        command = [
            "pulseaudio", "--daemonize=no", "--exit-idle-time=-1", "-n", "--use-pid-file=false",
            "--disable-shm=true", "--disallow-exit=true", "--log-target=stderr", "--log-level=info",
            f"--load=module-native-protocol-unix socket={self.socket} auth-anonymous=1",
            f"--load=module-null-sink sink_name={SPEAKER} rate=48000 channels=1",
            f"--load=module-null-sink sink_name={FEED} rate=48000 channels=1",
            f"--load=module-remap-source source_name={MIC} master={FEED}.monitor",
        ]
        with open(self.log_path, "wb") as log:
            # Its own process group, so stop() can end it and nothing else.
            self.process = subprocess.Popen(command, env=env, stdin=subprocess.DEVNULL, stdout=log,
                                            stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise PulseError(f"pulseaudio exited with {self.process.returncode}:\n{self.log()}")
            if self.socket.exists() and self._ready():
                self.pactl("set-default-sink", SPEAKER)
                self.pactl("set-default-source", MIC)
                return self
            time.sleep(0.1)
        self.stop()
        raise PulseError(f"pulseaudio did not come up within {timeout} s:\n{self.log()}")

    def _ready(self) -> bool:
        done = subprocess.run(["pactl", "info"], env=self.env, capture_output=True, text=True, timeout=10)
        return done.returncode == 0

    def stop(self) -> None:
        for child in self._children:
            _end(child)
        self._children.clear()
        if self.process is not None:
            _end(self.process)
            self.process = None

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-4000:]
        except OSError:
            return ""

    # --- tools -------------------------------------------------------------
    def pactl(self, *args: str) -> str:
        done = subprocess.run(["pactl", *args], env=self.env, capture_output=True, text=True, timeout=10)
        if done.returncode != 0:
            raise PulseError(f"pactl {' '.join(args)} failed: {done.stderr.strip()}")
        return done.stdout

    def list(self, kind: str) -> list[dict]:
        """`pactl --format=json list KIND`: sinks, sources, sink-inputs, source-outputs, ..."""
        return json.loads(self.pactl("--format=json", "list", kind) or "[]")

    def device_index(self, kind: str, name: str) -> int:
        for device in self.list(kind):
            if device["name"] == name:
                return int(device["index"])
        raise PulseError(f"no {kind[:-1]} named {name}")

    def streams(self, pid: int) -> dict[str, list[int]]:
        """The process's open streams: {'playing': [sink index, ...], 'recording': [source index, ...]}."""
        def mine(kind: str, device_key: str) -> list[int]:
            return [int(stream[device_key]) for stream in self.list(kind)
                    if str(stream.get("properties", {}).get("application.process.id")) == str(pid)]

        return {"playing": mine("sink-inputs", "sink"), "recording": mine("source-outputs", "source")}

    def loopback(self, source: str, sink: str, latency_ms: int, gain_db: float) -> int:
        """Feed `source` into `sink`, `gain_db` quieter and `latency_ms` late: an open speaker heard by the
        mic. Returns the module's index, for unload_module."""
        module = self.pactl("load-module", "module-loopback", f"source={source}", f"sink={sink}",
                            f"latency_msec={latency_ms}", "source_dont_move=true", "sink_dont_move=true").strip()
        (stream,) = [s for s in self.list("sink-inputs") if str(s.get("owner_module")) == module]
        # pactl reads a plain decimal as a linear factor (its dB syntax can't be negative).
        self.pactl("set-sink-input-volume", str(stream["index"]), f"{10 ** (gain_db / 20):.4f}")
        return int(module)

    def unload_module(self, module: int) -> None:
        self.pactl("unload-module", str(module))

    def play(self, wav: Path, sink: str = FEED) -> subprocess.Popen:
        """Start playing a wav (or flac) file into a sink; wait() on the result for the end."""
        child = subprocess.Popen(["paplay", f"--device={sink}", str(wav)], env=self.env,
                                 stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                 start_new_session=True)
        self._children.append(child)
        return child

    def record(self, path: Path, source: str = f"{SPEAKER}.monitor") -> "Recording":
        return Recording(self, path, source).start()


class Recording:
    """parec from a source into a raw 16 kHz mono s16le file, readable while it runs.

    parec keeps its default (large) latency on purpose: a low-latency monitor
    (--latency-msec=20) drives the null sink in 20 ms ticks, and then
    PortAudio's duplex ALSA stream in the agent dies at start-up.
    """

    def __init__(self, server: PulseServer, path: Path, source: str):
        self.server, self.path, self.source = server, Path(path), source
        self.process: subprocess.Popen | None = None

    def start(self) -> "Recording":
        with open(self.path, "wb") as out:
            self.process = subprocess.Popen(
                ["parec", f"--device={self.source}", "--format=s16le", f"--rate={RECORD_RATE}", "--channels=1"],
                env=self.server.env, stdin=subprocess.DEVNULL, stdout=out,
                stderr=subprocess.DEVNULL, start_new_session=True)
        self.server._children.append(self.process)
        return self

    @property
    def seconds(self) -> float:
        """How much has been recorded so far."""
        try:
            return self.path.stat().st_size / 2 / RECORD_RATE
        except OSError:
            return 0.0

    def stop(self) -> np.ndarray:
        if self.process is not None:
            _end(self.process, signal.SIGINT)
        return self.audio()

    def audio(self) -> np.ndarray:
        data = self.path.read_bytes()
        return np.frombuffer(data[: len(data) // 2 * 2], dtype="<i2").astype(np.float32) / 32768.0


def _end(process: subprocess.Popen, first: int = signal.SIGTERM, grace: float = 5.0) -> None:
    """Stop a child started in its own session: `first`, then SIGKILL after `grace` seconds."""
    if process.poll() is not None:
        return
    try:
        os.killpg(process.pid, first)
    except ProcessLookupError:
        return
    try:
        process.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        process.wait(timeout=grace)


def rms_dbfs(audio: np.ndarray) -> float:
    if len(audio) == 0:
        return -120.0
    rms = float(np.sqrt(np.mean(np.square(audio, dtype=np.float64))))
    return 20 * np.log10(max(rms, 1e-6))
