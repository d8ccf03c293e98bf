"""The few statistics a report needs: percentiles, summaries, word error rate.

The latency stages they summarise are defined in conversation/latency.py.
"""
from __future__ import annotations

import re
from typing import Iterable, Mapping, Sequence

import numpy as np


def percentile(values: Iterable[float | None], q: float) -> float | None:
    """The q-th percentile (0-100, linear interpolation) of the values that are not None."""
    present = [v for v in values if v is not None]
    return float(np.percentile(present, q)) if present else None


def summarize(rows: Sequence[Mapping], keys: Iterable[str]) -> dict[str, dict[str, float | int | None]]:
    """{key: {p50, p90, n}} over the rows that have the key."""
    summary = {}
    for key in keys:
        values = [row.get(key) for row in rows]
        summary[key] = {"p50": _round(percentile(values, 50)), "p90": _round(percentile(values, 90)),
                        "n": sum(v is not None for v in values)}
    return summary


# --- word error rate -------------------------------------------------------

_UNITS = {word: n for n, word in enumerate(
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen "
    "sixteen seventeen eighteen nineteen".split())}
_TENS = {word: 10 * n for n, word in enumerate("_ _ twenty thirty forty fifty sixty seventy eighty ninety".split())
         if word != "_"}
_SCALES = {"hundred": 100, "thousand": 1000, "million": 1_000_000}


# Hesitations, which a transcript may or may not write: left out of WER as Whisper's own English normalizer does.
_FILLERS = {"hmm", "mm", "mhm", "mmm", "uh", "um"}


def normalize_words(text: str) -> list[str]:
    """Lowercase words without punctuation or fillers, numbers as digits ("eighteen thirteen" -> "1813")."""
    text = text.lower().replace("-", " ")
    text = re.sub(r"(?<=\d),(?=\d{3})", "", text)  # 1,000 -> 1000
    words = [word for word in re.sub(r"[^\w\s']|_", " ", text).replace("'", "").split() if word not in _FILLERS]
    words = _number_words_to_digits(words)
    return _join_digit_runs(words)


def word_error_rate(reference: str, hypothesis: str) -> float | None:
    """(substitutions + deletions + insertions) / reference words; None for an empty reference."""
    ref, hyp = normalize_words(reference), normalize_words(hypothesis)
    if not ref:
        return None
    row = list(range(len(hyp) + 1))
    for i, ref_word in enumerate(ref, 1):
        previous, row[0] = row[0], i
        for j, hyp_word in enumerate(hyp, 1):
            previous, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, previous + (ref_word != hyp_word))
    return round(row[-1] / len(ref), 4)


def _number_words_to_digits(words: list[str]) -> list[str]:
    out: list[str] = []
    number: int | None = None
    group = 0
    for word in words:
        if word in _UNITS or word in _TENS:
            value = _UNITS.get(word, _TENS.get(word))
            if number is not None and group % 100 and not (group % 10 == 0 and value < 10 and group % 100 >= 20):
                out.append(str(number + group))  # "eighteen thirteen": a new number starts
                number, group = None, 0
            number = number or 0
            group += value
        elif word in _SCALES and number is not None:
            if _SCALES[word] == 100:
                group = max(group, 1) * 100
            else:
                number, group = number + max(group, 1) * _SCALES[word], 0
        else:
            if number is not None:
                out.append(str(number + group))
                number, group = None, 0
            out.append(word)
    if number is not None:
        out.append(str(number + group))
    return out


def _join_digit_runs(words: list[str]) -> list[str]:
    """'18 13' -> '1813', so a year written either way compares equal."""
    out: list[str] = []
    for word in words:
        if out and word.isdigit() and out[-1].isdigit():
            out[-1] += word
        else:
            out.append(word)
    return out


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 1)
