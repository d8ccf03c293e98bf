"""Ground truth from the audio itself, not from the agent's own decisions.

The agent logs when *it* thought the user stopped and when *it* started
playing. These functions look at the recordings instead: where speech
energy really ends in the input, and where the agent first becomes audible
in its output, so a benchmark can check the agent's clock against the sound;
measure_turn sets the two side by side for each turn of a replay.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from ..latency import stage_durations_ms
from .replay import BenchmarkError

BAND_HZ = (100.0, 7000.0)
WINDOW_MS = 20.0  # long enough for a pitch period or two, short enough to place an end within ~10 ms
MIN_FLOOR_DBFS = -90.0  # below this is digital silence (16-bit zero), not a noise floor
MASK_HOP_S = 0.005  # speech_mask's default hop
TALK_OVER_WINDOW_S = 0.1  # user speech this close to a reply's start was already under way (no one reacts faster)


@dataclass(frozen=True)
class MaskSettings:
    """How far above the noise floor and how close to the peak speech must be.

    A frame turns speech on when it is `on_margin_db` above the floor, a
    fraction `on_fraction` of the way from floor to peak, and within
    `peak_range_db` of the peak, whichever is highest; it stays on down to
    `hysteresis_db` below that. The peak-relative rule keeps breath and room
    noise out of clean recordings; the floor-relative ones keep hiss out of
    noisy ones.
    """

    on_margin_db: float = 15.0
    on_fraction: float = 0.5
    peak_range_db: float = 30.0
    hysteresis_db: float = 6.0
    loud_db: float = 10.0  # frames this far above the floor set the peak
    min_range_db: float = 20.0  # a clip whose loud parts are nearer the floor has no speech
    min_run_ms: float = 60.0  # shorter isolated bursts are clicks, not syllables
    attach_ms: float = 100.0  # ... unless this close to a real syllable (a plosive release)


def frame_levels(audio: np.ndarray, rate: int, hop_ms: float = 5.0,
                 window_ms: float = WINDOW_MS) -> np.ndarray:
    """Short-time speech-band level in dBFS, one value per hop; frame i covers i*hop .. (i+1)*hop.

    Only 100 Hz - 7 kHz counts: room rumble and mains hum sit below it,
    and the band still holds every voice and the fricatives that end words.
    """
    audio = _mono(audio).astype(np.float64)
    hop_s = hop_ms / 1000
    count = int(np.ceil(len(audio) / rate / hop_s))
    if count == 0:
        return np.zeros(0)
    window = int(round(rate * window_ms / 1000))
    # Windows centred on their hop; exact hop times (no rounding drift at 44.1 kHz).
    centres = np.round((np.arange(count) + 0.5) * hop_s * rate).astype(int)
    padded = np.concatenate([np.zeros(window), audio, np.zeros(window)])
    starts = centres - window // 2 + window
    frames = padded[starts[:, None] + np.arange(window)[None, :]]
    taper = np.hanning(window)
    spectrum = np.abs(np.fft.rfft(frames * taper, axis=1)) ** 2
    freqs = np.fft.rfftfreq(window, 1 / rate)
    band = (freqs >= BAND_HZ[0]) & (freqs <= BAND_HZ[1])
    power = 2 * spectrum[:, band].sum(axis=1) / (window * np.sum(taper ** 2))  # Parseval: mean square
    return 10 * np.log10(power + 1e-12)


def speech_mask(audio: np.ndarray, rate: int, hop_ms: float = 5.0,
                settings: MaskSettings = MaskSettings()) -> np.ndarray:
    """Boolean speech activity per hop (frame i covers i*hop .. (i+1)*hop seconds)."""
    levels = frame_levels(audio, rate, hop_ms)
    if levels.size == 0:
        return np.zeros(0, dtype=bool)
    # The floor is the clip's quiet background; zero padding is not background.
    background = levels[levels > MIN_FLOOR_DBFS]
    floor = float(np.percentile(background, 10)) if background.size else MIN_FLOOR_DBFS
    loud = levels[levels >= floor + settings.loud_db]
    if loud.size == 0:
        return np.zeros(levels.size, dtype=bool)
    # The typical loud frame, not the loudest: one click must not set the scale.
    peak = float(np.percentile(loud, 95))
    if peak - floor < settings.min_range_db:
        return np.zeros(levels.size, dtype=bool)
    on = max(floor + settings.on_margin_db, floor + settings.on_fraction * (peak - floor),
             peak - settings.peak_range_db)
    mask = _hysteresis(levels, on, on - settings.hysteresis_db)
    return _drop_isolated_bursts(mask, hop_ms / 1000, settings)


def true_speech_end(audio: np.ndarray, rate: int, near_s: float, search_s: float = 2.0,
                    slack_s: float = 0.1, mask: np.ndarray | None = None, hop_ms: float = 5.0) -> float | None:
    """The real end of the speech an endpointer said ended at `near_s`.

    The last speech-active time in (near_s - search_s, near_s + slack_s]; if
    that word carries on past the window, its end (the endpointer cut a word,
    so the user was still talking). None when no speech is in the window.
    """
    mask = speech_mask(audio, rate, hop_ms) if mask is None else mask
    hop_s = hop_ms / 1000
    lo = max(0, int(np.floor((near_s - search_s) / hop_s)))
    hi = min(mask.size, int(np.ceil((near_s + slack_s) / hop_s)))
    active = np.flatnonzero(mask[lo:hi])
    if active.size == 0:
        return None
    last = lo + int(active[-1])
    while last + 1 < mask.size and mask[last + 1]:
        last += 1
    return (last + 1) * hop_s


def speech_active(mask: np.ndarray, start_s: float, end_s: float, hop_ms: float = 5.0) -> bool:
    """Is there speech anywhere in [start_s, end_s)?"""
    hop_s = hop_ms / 1000
    lo = max(0, int(np.floor(start_s / hop_s)))
    hi = min(mask.size, int(np.ceil(end_s / hop_s)))
    return bool(hi > lo and mask[lo:hi].any())


def first_audible(output: np.ndarray, rate: int, after_s: float, threshold_dbfs: float = -45.0) -> float | None:
    """Time of the first output sample at or after `after_s` louder than the threshold, or None.

    The agent's output track holds only its own voice (silence elsewhere), so
    a sample threshold is exact; -45 dBFS ignores dither and fade-in tails.
    """
    output = _mono(output)
    start = max(0, int(np.ceil(after_s * rate)))
    loud = np.flatnonzero(np.abs(output[start:]) >= 10 ** (threshold_dbfs / 20))
    return None if loud.size == 0 else (start + int(loud[0])) / rate


# --- one turn of a replay -------------------------------------------------

def measure_turn(record: Mapping, mic: np.ndarray, speaker: np.ndarray, rate: int, mask: np.ndarray) -> dict:
    """One turn's stages (from its log record) and what the audio says about it.

    `mic` is the replayed clip, `speaker` the agent's output aligned with it
    at the same `rate`, and `mask` speech_mask(mic, rate).
    """
    row: dict = {"turn": record.get("turn"), "user_text": record.get("user_text", ""),
                 "interrupted": bool(record.get("interrupted")), "error": record.get("error"),
                 **stage_durations_ms(record)}
    speech_end, playback = record.get("speech_end"), record.get("playback_start")
    true_end = true_speech_end(mic, rate, speech_end, mask=mask) if speech_end is not None else None
    # Search from the earlier of the two ends: a reply that began before the
    # true end (over the user's last words) then shows as a negative latency.
    ends = [t for t in (true_end, speech_end) if t is not None]
    onset = first_audible(speaker, rate, min(ends)) if ends else None
    row.update({
        "true_speech_end": round_or_none(true_end), "audible_at": round_or_none(onset),
        "v2v_audio_ms": ms_between(onset, true_end),
        "endpoint_lag_ms": ms_between(speech_end, true_end),
        "onset_vs_log_ms": ms_between(onset, playback),
        "talked_over": _talked_over(mask, onset),
        "agent_already_audible": _already_audible(speaker, rate, true_end),
    })
    return row


def measure_replay(clip: Path, out_wav: Path, turns: Sequence[Mapping]) -> tuple[list[dict], float]:
    """measure_turn for every turn of one replay, and the seconds of speech in the clip."""
    import soundfile as sf

    from audio_io.files import read_audio

    mic, rate = read_audio(clip)
    speaker, out_rate = sf.read(str(out_wav), dtype="float32")
    if out_rate != rate:
        raise BenchmarkError(f"{out_wav} is at {out_rate} Hz but {clip} at {rate} Hz: they must be aligned")
    mask = speech_mask(mic, rate)
    return [measure_turn(record, mic, speaker, rate, mask) for record in turns], float(mask.sum()) * MASK_HOP_S


def ms_between(later: float | None, earlier: float | None) -> float | None:
    return None if later is None or earlier is None else round((later - earlier) * 1000, 1)


def round_or_none(value: float | None, digits: int = 3) -> float | None:
    return None if value is None else round(value, digits)


def _talked_over(mask: np.ndarray, onset: float | None) -> bool:
    """The user was speaking when the reply became audible."""
    return onset is not None and speech_active(mask, onset - TALK_OVER_WINDOW_S, onset + TALK_OVER_WINDOW_S)


def _already_audible(speaker: np.ndarray, rate: int, at: float | None) -> bool:
    """The agent was still talking at the user's speech end (an earlier reply): the audio onset is unreliable."""
    if at is None:
        return False
    heard = first_audible(speaker, rate, max(0.0, at - 0.05))
    return heard is not None and heard <= at


def _mono(audio: np.ndarray) -> np.ndarray:
    audio = np.asarray(audio, dtype=np.float32)
    return audio.mean(axis=1) if audio.ndim == 2 else audio


def _hysteresis(levels: np.ndarray, on: float, off: float) -> np.ndarray:
    """Runs above `off` that reach `on` somewhere."""
    above_off = levels >= off
    edges = np.flatnonzero(np.diff(np.concatenate([[0], above_off.astype(np.int8), [0]])))
    mask = np.zeros(levels.size, dtype=bool)
    for start, stop in zip(edges[::2], edges[1::2]):
        if (levels[start:stop] >= on).any():
            mask[start:stop] = True
    return mask


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    edges = np.flatnonzero(np.diff(np.concatenate([[0], mask.astype(np.int8), [0]])))
    return list(zip(edges[::2].tolist(), edges[1::2].tolist()))


def _drop_isolated_bursts(mask: np.ndarray, hop_s: float, settings: MaskSettings) -> np.ndarray:
    runs = _runs(mask)
    min_len = settings.min_run_ms / 1000 / hop_s
    reach = settings.attach_ms / 1000 / hop_s
    syllables = [(a, b) for a, b in runs if b - a >= min_len]
    kept = mask.copy()
    for a, b in runs:
        if b - a >= min_len:
            continue
        if not any(a - sb <= reach and sa - b <= reach for sa, sb in syllables):
            kept[a:b] = False
    return kept
