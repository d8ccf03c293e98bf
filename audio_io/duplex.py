"""Audio endpoints that run one full-duplex callback per block.

`on_block(mic, t) -> speaker` gets a float32 mono microphone block that
started at input time `t` and returns the speaker block of the same length.
The live device and the file replay share this contract, so the agent
cannot tell them apart.
"""
from __future__ import annotations

import logging
import threading
import time
from pathlib import Path
from typing import Callable, Protocol

import numpy as np

from .clock import InputClock
from .files import WavWriter, read_audio

log = logging.getLogger(__name__)

BlockCallback = Callable[[np.ndarray, float], np.ndarray]


class AudioDeviceError(Exception):
    """No usable audio device; the message suggests what to do."""


class MicTransform(Protocol):
    """Alters what the mic hears given what the speaker played (an echo model)."""

    def mic(self, block: np.ndarray) -> np.ndarray: ...

    def play(self, block: np.ndarray) -> None: ...


class FileDuplex:
    """Replays a file as the microphone and records the speaker to `output_path`, in step.

    The output is aligned sample for sample with the input. After the input
    ends, silence is fed while `keep_going()` says the agent is still busy.
    Each of `room` hears the speaker and adds to the mic, in order.
    """

    def __init__(self, path: str, output_path: str | Path, block_ms: float, clock: InputClock,
                 realtime: bool = True, room: list[MicTransform] | None = None, max_tail_s: float = 60.0):
        self.audio, self.rate = read_audio(path)
        self._writer = WavWriter(output_path, self.rate)  # here, so a bad path fails before the models load
        self.block = max(1, int(self.rate * block_ms / 1000))
        self.clock = clock
        self.realtime = realtime
        self.room = room or []  # what the room adds to the mic: the speaker's echo, another voice
        self.max_tail_s = max_tail_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self, on_block: BlockCallback, keep_going: Callable[[], bool],
              on_end: Callable[[], None] = lambda: None) -> None:
        self._thread = threading.Thread(target=self._run, args=(on_block, keep_going, on_end),
                                        name="file-duplex", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join()
        else:
            self._writer.close()  # never started: the replay thread did not take it over

    def _run(self, on_block: BlockCallback, keep_going: Callable[[], bool], on_end: Callable[[], None]) -> None:
        total = len(self.audio)
        tail_limit = total + int(self.max_tail_s * self.rate)
        start = time.monotonic()
        pos = 0
        try:
            while not self._stop.is_set():
                if pos >= total and (pos >= tail_limit or not keep_going()):
                    break
                mic = self.audio[pos:pos + self.block]
                if len(mic) < self.block:
                    mic = np.concatenate([mic, np.zeros(self.block - len(mic), dtype=np.float32)])
                t = pos / self.rate
                if self.realtime:
                    delay = start + t - time.monotonic()
                    if delay > 0:
                        time.sleep(delay)
                self.clock.tick(t)
                for sound in self.room:
                    mic = sound.mic(mic)
                speaker = on_block(mic, t)
                for sound in self.room:
                    sound.play(speaker)
                self._writer.write(speaker)
                pos += self.block
        finally:
            self._writer.close()
            on_end()


def _sounddevice():
    try:
        import sounddevice
    except OSError as error:  # PortAudio itself is missing
        raise AudioDeviceError(f"no sound support ({error}; install libportaudio2); "
                               "use --input FILE or --text") from None
    return sounddevice


def resolve_device(spec: str | int | None, kind: str) -> int | None:
    """Turn a config device (index, name substring or null) into an index."""
    sd = _sounddevice()
    try:
        devices = sd.query_devices()
    except Exception as error:
        raise AudioDeviceError(f"cannot list audio devices ({error}); use --input FILE or --text") from None
    channel_key = "max_input_channels" if kind == "input" else "max_output_channels"
    usable = [(i, d) for i, d in enumerate(devices) if d[channel_key] > 0]
    if not usable:
        raise AudioDeviceError(f"no audio {kind} device found; use --input FILE or --text, or see --list-devices")
    if spec is None:
        return None
    if isinstance(spec, int):
        if any(i == spec for i, _ in usable):
            return spec
        raise AudioDeviceError(f"audio.{kind}_device: no {kind} device with index {spec}; see --list-devices")
    for i, d in usable:
        if spec.lower() in d["name"].lower():
            return i
    raise AudioDeviceError(f"audio.{kind}_device: no {kind} device named like {spec!r}; see --list-devices")


def list_devices() -> str:
    sd = _sounddevice()
    try:
        devices = sd.query_devices()
    except Exception as error:
        raise AudioDeviceError(f"cannot list audio devices ({error})") from None
    if len(devices) == 0:
        raise AudioDeviceError("no audio devices found; use --input FILE or --text")
    return str(devices)


class LiveDuplex:
    """The real microphone and speaker through one sounddevice stream.

    With `listen=False` (text mode) only the speaker is opened, and the
    callback hears silence.
    """

    def __init__(self, input_device: str | int | None, output_device: str | int | None,
                 rate: int | None, block_ms: float, clock: InputClock, latency_ms: float = 100.0,
                 listen: bool = True):
        sd = _sounddevice()
        self._sd = sd
        self.listen = listen
        self.latency = latency_ms / 1000
        self.input_device = resolve_device(input_device, "input") if listen else None
        self.output_device = resolve_device(output_device, "output")
        try:
            info = sd.query_devices(self.output_device, "output")
        except Exception as error:
            raise AudioDeviceError(f"no audio output device ({error}); see --list-devices") from None
        self.rate = int(rate or info["default_samplerate"])
        self.block = max(1, int(self.rate * block_ms / 1000))
        self.clock = clock
        self.output_latency = 0.0
        self._stream = None
        self._pos = 0

    def start(self, on_block: BlockCallback) -> None:
        def tick(frames: int, mic: np.ndarray, out: np.ndarray) -> None:
            t = self._pos / self.rate
            self.clock.tick(t)
            out[:, 0] = on_block(mic, t)
            self._pos += frames

        def duplex_callback(indata, outdata, frames, _time, status):
            if status.input_overflow or status.output_underflow:
                log.debug("audio status: %s", status)
            tick(frames, indata[:, 0].copy(), outdata)

        def speaker_callback(outdata, frames, _time, status):
            tick(frames, np.zeros(frames, dtype=np.float32), outdata)

        # An explicit latency: PortAudio's lowest default stalls or dies on busy machines.
        common = dict(samplerate=self.rate, blocksize=self.block, channels=1, dtype="float32", latency=self.latency)
        try:
            if self.listen:
                self._stream = self._sd.Stream(device=(self.input_device, self.output_device),
                                               callback=duplex_callback, **common)
            else:
                self._stream = self._sd.OutputStream(device=self.output_device, callback=speaker_callback, **common)
            self._stream.start()
        except Exception as error:
            raise AudioDeviceError(f"cannot open the audio device ({error}); use --input FILE or --text, "
                                   "or pick another device in config.yaml (see --list-devices)") from None
        latency = self._stream.latency
        self.output_latency = float(latency[1] if self.listen else latency)

    @property
    def alive(self) -> bool:
        return self._stream is not None and self._stream.active

    def stop(self) -> None:
        if self._stream is not None:
            self._stream.stop()
            self._stream.close()
            self._stream = None
