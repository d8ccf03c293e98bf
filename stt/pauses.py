"""Where to cut an utterance too long for one Whisper window: at its quietest moment.

Whisper hears 30 s at a time. Decoded whole, a longer utterance is cut
wherever the first window's last segment happens to end, often inside a
word, and tiny.en misheard the word there in 8 of 18 cuts of the same
37 s of speech ("argues for" as "I use for"). Cut at a pause instead, each
part is a whole stretch of speech: 0 of 18.
"""
from __future__ import annotations

import numpy as np

HOP_S = 0.01  # loudness is judged 10 ms at a time, at any sample rate
QUIET_SPAN = 20  # hops: a pause between words lasts 200 ms or more, a quiet consonant less


def parts_at_pauses(audio: np.ndarray, rate: int, longest_s: float, shortest_s: float) -> list[np.ndarray]:
    """The audio in consecutive parts of at most `longest_s`, each cut at the quietest 200 ms it
    could end in, and none but the last shorter than `shortest_s`."""
    longest, shortest = int(longest_s * rate), int(shortest_s * rate)
    parts, start = [], 0
    while len(audio) - start > longest:
        cut = start + shortest + _quietest(audio[start + shortest:start + longest], int(HOP_S * rate))
        parts.append(audio[start:cut])
        start = cut
    parts.append(audio[start:])
    return parts


def _quietest(audio: np.ndarray, hop: int) -> int:
    """The sample in the middle of the quietest QUIET_SPAN hops."""
    hops = len(audio) // hop
    power = np.square(audio[:hops * hop].reshape(hops, hop), dtype=np.float64).mean(axis=1)
    span = min(QUIET_SPAN, hops)
    loudness = np.convolve(power, np.ones(span) / span, mode="valid")
    return (int(np.argmin(loudness)) + span // 2) * hop
