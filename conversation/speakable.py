"""Turning LLM markdown into text worth speaking."""
from __future__ import annotations

import re

_EMOJI = re.compile(
    "[\U0001F000-\U0001FAFF\U00002600-\U000027BF\U0001F900-\U0001F9FF\U00002B00-\U00002BFF"
    "\U0000FE0F\U0000200D\U000020E3\U0001F1E6-\U0001F1FF]+")
_IMAGE = re.compile(r"!\[[^\]]*\]\([^)]*\)")
_LINK = re.compile(r"\[([^\]]+)\]\([^)]*\)")
_LINE_MARKER = re.compile(r"(?m)^\s*(?:#{1,6}\s+|>\s*|[-*+•]\s+|\d{1,2}[.)]\s+)")
_EMPHASIS = re.compile(r"(\*\*|__|~~|\*(?=\S)|(?<=\S)\*)")
_TABLE_RULE = re.compile(r"(?m)^\s*\|?[\s:|-]+\|[\s:|-]*$")
_SPACES = re.compile(r"\s+")


def speakable(text: str) -> str:
    """Strip markdown, emoji and symbols; return '' when nothing is left to say."""
    text = _IMAGE.sub("", text)
    text = _LINK.sub(r"\1", text)
    text = _TABLE_RULE.sub(" ", text)
    text = _LINE_MARKER.sub("", text)
    text = _EMPHASIS.sub("", text)
    text = text.replace("`", "").replace("|", ", ")
    text = _EMOJI.sub("", text)
    text = _SPACES.sub(" ", text).strip()
    return text if re.search(r"\w", text) else ""
