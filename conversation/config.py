"""config.yaml, parsed once into validated, typed settings."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Mapping

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from audio_io.echo import EchoSettings
from audio_io.settings import AudioSettings, VadSettings
from llm.settings import LlmSettings
from stt.settings import SttSettings
from tts.settings import TtsSettings, VoiceSettings

from .languages import voice_mismatch


class ConfigError(Exception):
    """A config that cannot be used; the message names the key and what it expects."""


class PersonaLlm(BaseModel):
    model_config = ConfigDict(extra="forbid")

    model: str | None = Field(None, description="server model name; null = llm.model")
    temperature: float | None = Field(None, ge=0.0, le=2.0)
    max_tokens: int | None = Field(None, ge=1)


class Persona(BaseModel):
    model_config = ConfigDict(extra="forbid")

    system_prompt: str
    greeting: str = ""
    voice: str
    language: str = Field("en", description="a language code, or 'auto' to follow the user's language")
    llm: PersonaLlm = PersonaLlm()
    speed: float = Field(1.0, gt=0.25, le=4.0)


class ChunkerSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    max_sentence_chars: int = Field(150, ge=20, description="long sentences are split at a clause near this")
    first_clause_words: int = Field(2, ge=0, description="speak a reply's first comma-bounded phrase of this many words early; 0 = off")


class TurnSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    early_end: bool = Field(True, description="end the turn after vad.pause_ms of silence when the words and the voice "
                            "sound finished, instead of waiting vad.hangover_ms")
    smart_turn: bool = Field(True, description="ask the Smart Turn model whether the voice sounds finished")
    smart_turn_threshold: float = Field(0.5, ge=0.0, le=1.0)
    min_silence_ms: float = Field(300.0, ge=0, description="silence needed before an early end; the reply is "
                                  "prepared from vad.pause_ms on")
    statement_silence_ms: float = Field(600.0, ge=0, description="silence needed before an early end after a "
                                        "statement, not a question, request or command: speakers go on after "
                                        "400-500 ms")
    greet: bool = Field(True, description="speak the persona's greeting at start (live and text modes)")


class BargeInSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    enabled: bool = True
    min_interruption_ms: float = Field(250.0, ge=0, description="speech this long, or any words, cancels the reply; "
                                       "shorter noises pause playback until vad.pause_ms of silence, then it resumes")


class LogSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    turns: str = Field("turns.jsonl", description="one JSON line per turn")
    app: str = Field("agent.log", description="library warnings and debug output")


class Config(BaseModel):
    model_config = ConfigDict(extra="forbid")

    default_persona: str
    personas: dict[str, Persona]
    voices: dict[str, VoiceSettings]
    voices_file: str = Field("voices.yaml", description="voices added with `main.py voices add`, merged into voices")
    audio: AudioSettings = AudioSettings()
    vad: VadSettings = VadSettings()
    turn: TurnSettings = TurnSettings()
    barge_in: BargeInSettings = BargeInSettings()
    echo: EchoSettings = EchoSettings()
    stt: SttSettings = SttSettings()
    llm: LlmSettings = LlmSettings()
    tts: TtsSettings = TtsSettings()
    chunker: ChunkerSettings = ChunkerSettings()
    log: LogSettings = LogSettings()

    @model_validator(mode="after")
    def _references_exist(self) -> "Config":
        if self.default_persona not in self.personas:
            raise ValueError(f"default_persona: no persona named {self.default_persona!r}; "
                             f"choose one of {', '.join(self.personas)}")
        for name, persona in self.personas.items():
            if persona.voice not in self.voices:
                raise ValueError(f"personas.{name}.voice: no voice named {persona.voice!r}; "
                                 f"choose one of {', '.join(self.voices)}")
            if persona.language != "auto":
                mismatch = voice_mismatch(persona.voice, self.voices[persona.voice], persona.language)
                if mismatch:
                    raise ValueError(f"personas.{name}.language: {mismatch}")
        return self


def load_config(path: str | Path, env: Mapping[str, str] | None = None) -> Config:
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: config file not found (use --config PATH)") from None
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark else ""
        raise ConfigError(f"{path}:{where} is not valid YAML ({getattr(error, 'problem', error)})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of settings at the top level")
    added = read_added_voices(path.parent / data.get("voices_file", "voices.yaml"))
    if added and isinstance(data.get("voices"), dict):
        data["voices"] = {**added, **data["voices"]}  # config.yaml wins a name clash
    try:
        config = Config.model_validate(data)
    except ValidationError as error:
        raise ConfigError(f"{path}: {describe(error)}") from None
    return with_environment(resolve_paths(config, path.parent), os.environ if env is None else env)


def read_added_voices(path: Path) -> dict:
    if not path.is_file():
        return {}
    try:
        voices = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as error:
        raise ConfigError(f"{path}: is not valid YAML ({getattr(error, 'problem', error)})") from None
    if not isinstance(voices, dict):
        raise ConfigError(f"{path}: expected a mapping of voice names to voices")
    return voices


def resolve_paths(config: Config, base: Path) -> Config:
    """Relative model and clip paths are relative to the config file, not to where you run."""
    def resolved(value):
        return value if value in (None, "bundled") or Path(value).is_absolute() else str(base / value)

    voices = {}
    for name, voice in config.voices.items():
        if voice.backend == "xtts":
            voice = voice.model_copy(update={"references": [Path(resolved(str(p))) for p in voice.references]})
        else:
            voice = voice.model_copy(update={"model": resolved(voice.model)})
        voices[name] = voice
    tts = config.tts
    if tts.xtts is not None:
        xtts = tts.xtts.model_copy(update={
            "checkpoint_dir": Path(resolved(str(tts.xtts.checkpoint_dir))),
            "cache_dir": None if tts.xtts.cache_dir is None else Path(resolved(str(tts.xtts.cache_dir)))})
        tts = tts.model_copy(update={"xtts": xtts})
    llm = config.llm.model_copy(update={"model_path": resolved(config.llm.model_path)})
    return config.model_copy(update={"voices": voices, "tts": tts, "llm": llm})


def describe(error: ValidationError) -> str:
    """One line: the first problem's key path, what is wrong, and what was given."""
    first = error.errors()[0]
    key = ".".join(str(part) for part in first["loc"] if not str(part).startswith("function-"))
    message = first["msg"].removeprefix("Value error, ")
    if first["type"] == "extra_forbidden":
        return f"{key}: unknown key (check its spelling; see README's config reference)"
    if first["type"] == "missing":
        return f"{key}: missing; this key is required"
    given = first.get("input")
    shown = "" if isinstance(given, (dict, list)) or given is None else f" (got {given!r})"
    return f"{key}: {message}{shown}" if key else f"{message}{shown}"


def with_environment(config: Config, env: Mapping[str, str]) -> Config:
    """The usual OPENAI_* variables fill in what config.yaml leaves empty."""
    llm = config.llm
    updates = {}
    if not llm.base_url and env.get("OPENAI_BASE_URL"):
        updates["base_url"] = env["OPENAI_BASE_URL"]
    if not llm.api_key and env.get("OPENAI_API_KEY"):
        updates["api_key"] = env["OPENAI_API_KEY"]
    if updates:
        config = config.model_copy(update={"llm": llm.model_copy(update=updates)})
    return config


def with_llm(config: Config, target: str | None, model: str | None) -> Config:
    """`--llm URL|FILE.gguf` and `--model NAME` laid over the config's llm section."""
    updates: dict = {}
    if target:
        if target.startswith(("http://", "https://")):
            updates.update(backend="openai", base_url=target)
        else:
            path = Path(target).expanduser()
            if path.suffix != ".gguf" or not path.is_file():
                raise ConfigError(f"--llm: {target} is neither a server URL (http://...) nor a .gguf file")
            updates.update(backend="embedded", model_path=str(path.resolve()))
    if model:
        updates["model"] = model
    return config.model_copy(update={"llm": config.llm.model_copy(update=updates)}) if updates else config
