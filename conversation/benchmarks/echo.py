"""Measures echo cancellation on real speech, closed loop through RoomEcho.

    python -m conversation.benchmarks.echo [SPEECH_DIR]

prints the tables in docs/echo.md: echo return loss enhancement (ERLE) per
delay and gain, webrtcvad false triggers on residual echo, double-talk
detection of the user, and the CPU cost per 10 ms frame. tests/test_echo.py
asserts on the same measurements.
"""
from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr
import webrtcvad

from audio_io.echo import FRAME_LEN, EchoCanceller, EchoSettings
from audio_io.rates import SAMPLE_RATE
from audio_io.room import RoomEcho

SPEECH_DIR = Path(__file__).resolve().parents[3] / "shared" / "speech"
AGENT_CLIP = "lhotse_libri-1088-134315-0000.wav"  # 16 s of read speech: the agent's reply
USER_CLIP = "faster-whisper_jfk.flac"  # 11 s with pauses: the user talking over it
AGENT_DBFS = -20.0  # RMS of the reply as played
USER_DBFS = -26.0  # RMS of the user at the mic: as loud as the echo at -6 dB
NOISE_DBFS = -65.0  # mic self-noise and room hum
DELAYS_MS = (30, 80, 150, 200)
GAINS_DB = (-6, -12, -20)
ENDPOINT_WINDOW_MS = 200  # the shortest speech an endpointer would act on


def load_speech(name: str, rms_dbfs: float, speech_dir: Path = SPEECH_DIR) -> np.ndarray:
    """A clip as 16 kHz mono float64, scaled to `rms_dbfs`."""
    audio, rate = sf.read(str(speech_dir / name), dtype="float64", always_2d=True)
    mono = audio.mean(axis=1)
    if rate != SAMPLE_RATE:
        mono = soxr.resample(mono, rate, SAMPLE_RATE)
    mono = mono[: len(mono) // FRAME_LEN * FRAME_LEN]
    return mono * 10 ** (rms_dbfs / 20) / np.sqrt(np.mean(mono**2))


def to_int16(audio: np.ndarray) -> np.ndarray:
    return np.clip(np.round(audio * 32768.0), -32768, 32767).astype(np.int16)


@dataclass
class Run:
    """One closed-loop pass: every signal at the mic, 16 kHz int16, and the gate per 10 ms frame."""

    echo: np.ndarray  # the echo alone, as it reached the mic
    near: np.ndarray  # the user plus noise, without echo
    out: np.ndarray  # the canceller's output
    likely_echo: np.ndarray  # bool per 10 ms frame


def simulate(
    agent: np.ndarray,
    delay_ms: float,
    gain_db: float,
    canceller: EchoCanceller,
    near: np.ndarray | None = None,
    seed: int = 0,
) -> Run:
    """Play `agent` through a room while the mic hears `near` (same length, or None: silence)."""
    near = np.zeros_like(agent) if near is None else near
    room = RoomEcho(delay_ms, gain_db, seed=seed)
    echo, out, gate = [], [], []
    for start in range(0, len(agent), FRAME_LEN):
        far = to_int16(agent[start : start + FRAME_LEN])
        room.play(far)
        echo_frame = room.mic(np.zeros(FRAME_LEN, np.int16))
        near_frame = to_int16(near[start : start + FRAME_LEN])
        mic = np.clip(echo_frame.astype(np.int32) + near_frame, -32768, 32767).astype(np.int16)
        echo.append(echo_frame)
        out.append(canceller.process(mic, far))
        gate.append(canceller.likely_echo)
    return Run(np.concatenate(echo), to_int16(near), np.concatenate(out), np.array(gate))


def noise(length: int, dbfs: float = NOISE_DBFS, seed: int = 1) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(length) * 10 ** (dbfs / 20)


def placed(clip: np.ndarray, at_s: float, length: int) -> np.ndarray:
    """`clip` starting `at_s` into a silent track of `length` samples."""
    track = np.zeros(length)
    start = int(at_s * SAMPLE_RATE)
    count = min(len(clip), length - start)
    track[start : start + count] = clip[:count]
    return track


def erle_db(echo: np.ndarray, out: np.ndarray) -> float:
    """Echo return loss enhancement: echo power in over residual power out (echo-only input)."""
    echo_power = np.sum(echo.astype(np.float64) ** 2)
    residual_power = np.sum(out.astype(np.float64) ** 2)
    return float(10 * np.log10(echo_power / max(residual_power, 1.0)))


def voiced(audio: np.ndarray, aggressiveness: int = 3, frame_ms: int = 20) -> np.ndarray:
    """webrtcvad's verdict per frame, bool array."""
    vad = webrtcvad.Vad(aggressiveness)
    length = SAMPLE_RATE * frame_ms // 1000
    frames = [audio[i : i + length] for i in range(0, len(audio) - length + 1, length)]
    return np.array([vad.is_speech(frame.tobytes(), SAMPLE_RATE) for frame in frames])


def most_voiced_in_window(flags: np.ndarray, frame_ms: int = 20, window_ms: int = ENDPOINT_WINDOW_MS) -> float:
    """The most voiced milliseconds in any `window_ms` stretch: what an endpointer could act on."""
    window = max(1, window_ms // frame_ms)
    if flags.size < window:
        return float(flags.sum() * frame_ms)
    counts = np.convolve(flags.astype(int), np.ones(window, int), mode="valid")
    return float(counts.max() * frame_ms)


def gated(flags: np.ndarray, likely_echo: np.ndarray, frame_ms: int = 20) -> np.ndarray:
    """VAD flags with frames the canceller called likely echo cleared (10 ms gate frames grouped)."""
    per = frame_ms // 10
    echo = likely_echo[: flags.size * per].reshape(-1, per).any(axis=1)
    return flags & ~echo[: flags.size]


def warmed_canceller(
    agent: np.ndarray, settings: EchoSettings | None = None, delay_ms: float = 80, gain_db: float = -12
) -> EchoCanceller:
    """A canceller that has already cancelled one reply: the state of every reply after the first."""
    canceller = EchoCanceller(settings)
    simulate(agent, delay_ms, gain_db, canceller)
    return canceller


def cpu_cost_us(settings: EchoSettings | None = None, seconds: float = 5.0) -> float:
    """CPU time of one `process()` call on speech-like noise, microseconds."""
    canceller = EchoCanceller(settings)
    rng = np.random.default_rng(0)
    frames = to_int16(rng.standard_normal((int(seconds * 100), FRAME_LEN)) * 0.1)
    start = time.process_time()
    for frame in frames:
        canceller.process(frame, frame)
    return (time.process_time() - start) / len(frames) * 1e6


def _erle_table(agent: np.ndarray, settings: EchoSettings) -> None:
    print(f"ERLE dB, cold start (whole {len(agent) / SAMPLE_RATE:.0f} s clip) / warm (second reply)")
    print("delay ms | " + " | ".join(f"{gain:>4} dB      " for gain in GAINS_DB))
    for delay in DELAYS_MS:
        cells = []
        for gain in GAINS_DB:
            cold = simulate(agent, delay, gain, EchoCanceller(settings))
            warm = simulate(agent, delay, gain, warmed_canceller(agent, settings, delay, gain))
            cells.append(f"{erle_db(cold.echo, cold.out):5.1f} / {erle_db(warm.echo, warm.out):5.1f}")
        print(f"{delay:8} | " + " | ".join(cells))


def _false_trigger_table(agent: np.ndarray, settings: EchoSettings) -> None:
    print(f"echo only, webrtcvad(3) 20 ms frames: voiced frames in / out, most voiced ms in {ENDPOINT_WINDOW_MS} ms")
    print("delay gain | input voiced | cold out (gated) | warm out (gated)")
    mic_noise = noise(len(agent))
    for delay in DELAYS_MS:
        for gain in GAINS_DB:
            cold = simulate(agent, delay, gain, EchoCanceller(settings), mic_noise)
            warm = simulate(agent, delay, gain, warmed_canceller(agent, settings, delay, gain), mic_noise)
            cells = []
            for run in (cold, warm):
                flags = voiced(run.out)
                after_gate = gated(flags, run.likely_echo)
                raw = f"{flags.sum():3} {most_voiced_in_window(flags):3.0f} ms"
                cells.append(f"{raw} ({after_gate.sum():3} {most_voiced_in_window(after_gate):3.0f} ms)")
            unprocessed = voiced(to_int16(cold.echo / 32768.0 + mic_noise))
            print(f"{delay:5} {gain:4} | {unprocessed.sum():4} | " + " | ".join(cells))


def _double_talk_table(agent: np.ndarray, user: np.ndarray, settings: EchoSettings) -> None:
    print(
        f"double talk: user at {USER_DBFS:.0f} dBFS from 3 s;"
        " share of the user's voiced 20 ms frames still voiced after AEC (gated)"
    )
    near_user = placed(user, 3.0, len(agent))
    mic_noise = noise(len(agent))
    reference = voiced(to_int16(near_user)) & voiced(to_int16(near_user + mic_noise))
    for delay in DELAYS_MS:
        cells = []
        for gain in GAINS_DB:
            cold = simulate(agent, delay, gain, EchoCanceller(settings), near_user + mic_noise)
            warm = simulate(agent, delay, gain, warmed_canceller(agent, settings, delay, gain), near_user + mic_noise)
            for run in (cold, warm):
                flags = voiced(run.out)
                cells.append(f"{flags[reference].mean():.2f} ({gated(flags, run.likely_echo)[reference].mean():.2f})")
        by_gain = (f"{gain} dB cold {cells[2 * i]} warm {cells[2 * i + 1]}" for i, gain in enumerate(GAINS_DB))
        print(f"{delay:5} ms | " + " | ".join(by_gain))


def main(argv: list[str]) -> int:
    speech_dir = Path(argv[0]) if argv else SPEECH_DIR
    if not (speech_dir / AGENT_CLIP).is_file():
        print(f"speech clips not found in {speech_dir}; pass the folder holding {AGENT_CLIP}", file=sys.stderr)
        return 2
    agent = load_speech(AGENT_CLIP, AGENT_DBFS, speech_dir)
    user = load_speech(USER_CLIP, USER_DBFS, speech_dir)
    for settings in (EchoSettings(), EchoSettings(noise_suppression=True)):
        print(f"\n=== {settings!r}")
        _erle_table(agent, settings)
        _false_trigger_table(agent, settings)
        _double_talk_table(agent, user, settings)
        print(f"CPU per 10 ms frame: {cpu_cost_us(settings):.0f} us")
    print(f"CPU per 10 ms frame, disabled (pass-through): {cpu_cost_us(EchoSettings(enabled=False)):.0f} us")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
