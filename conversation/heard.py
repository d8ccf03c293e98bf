"""What the user actually heard of an interrupted reply."""
from __future__ import annotations

from audio_io.player import Playback


def heard_text(sentences: list[str], playback: Playback) -> str:
    """Whole sentences that were played, then the played share of the one cut off.

    Words of the cut sentence are assumed evenly spread over its audio, which
    is close enough to tell the LLM where it was stopped.
    """
    heard = []
    for index, sentence in enumerate(sentences):
        fraction = playback.heard_fraction(index)
        if fraction >= 0.98:
            heard.append(sentence)
            continue
        words = sentence.split()
        count = int(len(words) * fraction)
        if count:
            heard.append(" ".join(words[:count]) + "…")
        break
    return " ".join(heard)
