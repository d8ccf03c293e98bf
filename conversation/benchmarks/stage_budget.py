"""The stage budget: each stage's median inside the pipeline beside the same model's time alone.

Right after a conversation, in the same process, the session's models are
loaded again with the config's settings (same models, same threads), and each
turn the LLM answered is given to each stage alone, one stage at a time, with
nothing else running:

* endpoint wait: the endpointer on the turn's own audio (its pause rule, with no clock to fall behind);
* STT: Whisper on the audio the agent transcribed for that turn;
* LLM first token: the turn's own prompt, rebuilt from the turn log the way the agent's Dialogue
  builds it, after warming its history as the agent does (a cached follow-up: only the new words
  are read);
* first chunk: from that first token to the first piece the chunker and the repeat guard let
  through (the model samples anew, so the piece may differ from the pipeline's);
* TTS first audio: the pipeline's own first piece, in the turn's voice, to Piper's first audio.
"""
from __future__ import annotations

import asyncio
import time
from contextlib import aclosing
from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np

from audio_io.vad import Endpointer, SpeechPaused
from llm.base import Generation, Message
from tts.base import SpeechRequest

from ..chunker import Chunker
from ..config import Config
from ..dialogue import Dialogue
from ..latency import CHAIN, stage_durations_ms
from ..models import Models
from ..repeat_guard import RepeatGuard
from .stats import percentile

BUDGET_STAGES = CHAIN[:5]  # endpoint wait .. TTS first audio: the commit hold and the output are no model's
TRAILING_SILENCE_S = 2.0  # after the turn's audio: enough for the endpointer's pause and hang-over


@dataclass(frozen=True)
class TurnInputs:
    """What the agent gave its models for one turn, kept by the benchmark's reporter."""

    audio: np.ndarray  # the utterance as transcribed
    first_piece: str  # the first piece sent to the synthesizer ("" if none)


@dataclass(frozen=True)
class Prompt:
    history: list[Message]  # what the agent had read before the turn (its warmed prefix)
    messages: list[Message]  # the prompt itself
    generation: Generation
    earlier_replies: tuple[str, ...]  # what the repeat guard held the reply against


def answered_by_llm(record: Mapping) -> bool:
    return bool(record["user_text"] and record["agent_text"] and not record.get("command")
                and not record.get("resumes") and not record.get("error") and record["llm_first_token"] is not None)


def prompts(config: Config, records: Sequence[Mapping]) -> list[Prompt | None]:
    """Each turn's prompt as the agent built it, replaying the log through a Dialogue; None for no LLM turn."""
    dialogue, built, last_reply = Dialogue(config), [], ""
    for record in records:
        command = record.get("command") or ""
        if command.startswith("persona:"):
            dialogue.switch_persona(command.split(":", 1)[1])
        elif command.startswith("voice:"):
            dialogue.switch_voice(command.split(":", 1)[1])
        built.append(Prompt(dialogue.history.messages(), dialogue.prompt(record["user_text"], record["reply_language"]),
                            dialogue.generation(), tuple(dialogue.replies)) if answered_by_llm(record) else None)
        # Then the history, as Responder._finish leaves it.
        if record.get("resumes"):
            dialogue.resume_reply(f"{last_reply} {record['agent_text']}")  # the cut reply, whole
        elif record["user_text"]:
            dialogue.add_exchange(record["user_text"], record["heard_text"], interrupted=record["interrupted"])
        last_reply = record["heard_text"] or last_reply
    return built


def endpoint_wait_alone_ms(config: Config, audio: np.ndarray) -> float | None:
    """The endpointer's own wait on this audio: from the last voiced frame to the pause it reports."""
    endpointer = Endpointer(config.vad)
    frame, frame_s = endpointer.frame_len, config.vad.frame_ms / 1000
    padded = np.concatenate([audio, np.zeros(int(TRAILING_SILENCE_S / frame_s) * frame, np.float32)])
    pauses = [event for i in range(len(padded) // frame)
              for event in endpointer.process(padded[i * frame:(i + 1) * frame], i * frame_s)
              if isinstance(event, SpeechPaused)]
    return round((pauses[-1].at - pauses[-1].end) * 1000, 1) if pauses else None


async def measure_alone(config: Config, records: Sequence[Mapping], inputs: Sequence[TurnInputs | None]) -> list[dict]:
    """Each LLM-answered turn's stages alone, in ms, keyed like the turn log's stages."""
    models = Models.from_config(config)
    voices = sorted({record["voice"] for record in records})
    await models.stt_thread.call(models.transcriber.load)
    await asyncio.to_thread(models.chat.load)
    for name in voices:
        await models.ensure_voice(name, config.voices[name])
    rows = []
    try:
        for record, prompt, given in zip(records, prompts(config, records), inputs):
            if prompt is None or given is None:
                continue
            row = {"turn": record["turn"], "endpoint_wait": endpoint_wait_alone_ms(config, given.audio),
                   "stt": await _stt_ms(models, given.audio)}
            row["llm_first_token"], row["first_chunk"] = await _llm_ms(models, config, prompt)
            row["tts_first_audio"] = await _tts_ms(models, config, record, given.first_piece)
            rows.append(row)
    finally:
        await models.aclose()
    return rows


async def _stt_ms(models: Models, audio: np.ndarray) -> float:
    started = time.perf_counter()
    await models.transcribe(audio)
    return _ms_since(started)


async def _llm_ms(models: Models, config: Config, prompt: Prompt) -> tuple[float | None, float | None]:
    """(first token, first piece after it): the stream is closed once the first piece is through."""
    await models.chat.warm(prompt.history)
    started, at = time.perf_counter(), {}

    async def timed(messages: list[Message], generation: Generation):
        async with aclosing(models.chat.stream(messages, generation)) as pieces:
            async for piece in pieces:
                at.setdefault("token", time.perf_counter())
                yield piece

    settings = config.chunker
    fresh = RepeatGuard.for_prompt(prompt.messages, prompt.earlier_replies).fresh_sentences(
        timed, prompt.messages, prompt.generation,
        lambda: Chunker(settings.max_sentence_chars, settings.first_clause_words))
    async with aclosing(fresh):
        async for _ in fresh:
            at["piece"] = time.perf_counter()
            break
    token = _ms_since(started, at["token"]) if "token" in at else None
    return token, (_ms_since(at["token"], at["piece"]) if "piece" in at else None)


async def _tts_ms(models: Models, config: Config, record: Mapping, piece: str) -> float | None:
    if not piece:
        return None
    persona = config.personas[record["persona"]]
    voice = models.voice_for(persona, record["voice"], config.voices[record["voice"]], record["reply_language"])
    request = SpeechRequest(text=piece, voice=voice.settings, language=voice.language, speed=voice.speed,
                            first_in_reply=True)
    await models.release_memory()  # as the agent does after every turn
    started = time.perf_counter()
    async with aclosing(models.tts_thread.iterate(lambda: voice.synthesizer.stream(request))) as chunks:
        async for _ in chunks:
            return _ms_since(started)
    return None


def budget(records: Sequence[Mapping], alone: Sequence[Mapping]) -> list[dict]:
    """stage | in pipeline p50 | alone p50 | ratio, over the same turns (those measured alone)."""
    measured = {row["turn"] for row in alone}
    pipeline = [stage_durations_ms(record) for record in records if record["turn"] in measured]
    rows = []
    for stage in BUDGET_STAGES:
        inside = percentile([durations[stage.name] for durations in pipeline], 50)
        by_itself = percentile([row[stage.name] for row in alone], 50)
        rows.append({"stage": stage.name, "label": stage.label, "pipeline_p50_ms": _round(inside),
                     "alone_p50_ms": _round(by_itself), "ratio": round(inside / by_itself, 2)
                     if inside is not None and by_itself else None, "turns": len(alone)})
    return rows


def budget_table(rows: Sequence[Mapping]) -> str:
    """The budget as a Markdown table."""
    lines = ["| stage | in pipeline p50 ms | alone p50 ms | ratio |", "| --- | --- | --- | --- |"]
    for row in rows:
        lines.append(f"| {row['label']} | {_fmt(row['pipeline_p50_ms'])} | {_fmt(row['alone_p50_ms'])} | "
                     f"{'-' if row['ratio'] is None else format(row['ratio'], '.2f')} |")
    return "\n".join(lines)


def _ms_since(started: float, now: float | None = None) -> float:
    return round(((time.perf_counter() if now is None else now) - started) * 1000, 1)


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f}"
