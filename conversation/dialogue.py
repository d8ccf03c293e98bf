"""Who the agent is and what was said: persona, voice and history, under the live config."""
from __future__ import annotations

import copy
from collections import deque

from llm.base import Generation, Message
from llm.history import History

from .commands import Command
from .config import Config, Persona
from .languages import reply_instruction
from .repeats import NOTHING_NEW, is_nothing_new

# The replies the repeat guard holds a new one against: more than the model sees, since a
# reply that left the prompt's window could otherwise be said again word for word.
REMEMBERED_REPLIES = 300


class Dialogue:
    def __init__(self, config: Config, persona: str | None = None):
        self.config = config
        self.persona_name = persona or config.default_persona
        self._voice_override: str | None = None  # "use the X voice" until the persona changes
        self.history = History(self.persona.system_prompt, config.llm.context_tokens)
        self.last_reply = ""  # to recognise our own voice coming back through the mic
        self.replies: deque[str] = deque(maxlen=REMEMBERED_REPLIES)  # as heard, oldest first
        self.nothing_new_said = 0  # times the agent said it had nothing new to add
        self.exchanges = 0  # the user's turns answered so far: with llm.seed, each reply samples with its own seed

    @property
    def persona(self) -> Persona:
        return self.config.personas[self.persona_name]

    @property
    def voice_name(self) -> str:
        if self._voice_override in self.config.voices:
            return self._voice_override
        return self.persona.voice

    @property
    def voice_settings(self):
        return self.config.voices[self.voice_name]

    def speaker_after(self, command: Command) -> tuple[Persona, str]:
        """The persona and the voice name that speak once `command` is obeyed."""
        if command.kind == "persona":
            persona = self.config.personas[command.name]
            return persona, persona.voice
        return self.persona, command.name

    def obey(self, command: Command) -> None:
        if command.kind == "persona":
            self.switch_persona(command.name)
        else:
            self.switch_voice(command.name)

    def switch_persona(self, name: str) -> None:
        """Talk as another persona from the next reply on; the conversation so far is kept."""
        self.persona_name = name
        self._voice_override = None
        self.history.system_prompt = self.persona.system_prompt

    def add_exchange(self, user_text: str, reply: str, interrupted: bool = False) -> None:
        """What the user said and what they heard of the reply: for the model and for the repeat guard.

        A reply with nothing new stays out: the small model would copy it into its next replies.
        """
        self.exchanges += 1
        if is_nothing_new(reply):
            self.nothing_new_said += 1
            return
        self.history.add_user(user_text)
        self.history.add_assistant(reply, interrupted=interrupted)
        self.replies.append(reply)

    def history_after(self, user_text: str, reply: str) -> list[Message]:
        """The history's messages as add_exchange() would leave them (trimmed alike), without adding it."""
        if is_nothing_new(reply):
            return self.history.messages()
        history = copy.deepcopy(self.history)
        history.add_user(user_text)
        history.add_assistant(reply)
        return history.messages()

    def resume_reply(self, whole: str) -> None:
        """A cut reply was said to its end after all: it stands whole."""
        self.history.replace_last_assistant(whole)
        if self.replies:
            self.replies[-1] = whole

    def nothing_new(self) -> str:
        """What to say when every try repeated: a line not yet said, while there is one."""
        return NOTHING_NEW[self.nothing_new_said % len(NOTHING_NEW)]

    def switch_voice(self, name: str) -> None:
        self._voice_override = name

    def apply(self, config: Config) -> None:
        self.config = config
        if self.persona_name not in config.personas:
            self.persona_name = config.default_persona
        self.history.system_prompt = self.persona.system_prompt
        self.history.context_tokens = config.llm.context_tokens

    def prompt(self, user_text: str, voice_language: str | None) -> list[Message]:
        return (self.history.messages() + reply_instruction(self.persona.language, voice_language)
                + [{"role": "user", "content": user_text}])

    def generation(self) -> Generation:
        """The next reply's settings. With llm.seed, its own seed: each reply seeded alike drew the same
        random numbers, and with one seed every reply began with an unlikely word (in French)."""
        persona, llm = self.persona.llm, self.config.llm
        seed = None if llm.seed is None else llm.seed * 100_000 + self.exchanges
        return Generation(temperature=llm.temperature if persona.temperature is None else persona.temperature,
                          max_tokens=persona.max_tokens or llm.max_tokens, model=persona.model or llm.model,
                          frequency_penalty=llm.frequency_penalty, presence_penalty=llm.presence_penalty,
                          repeat_penalty=llm.repeat_penalty, seed=seed)
