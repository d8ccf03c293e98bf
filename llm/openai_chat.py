"""Any OpenAI-compatible server: OpenAI, Ollama, vLLM, a llama.cpp server."""
from __future__ import annotations

from typing import AsyncIterator

from .base import CUT_SHORT, Generation, LlmError, Message
from .settings import LlmSettings

OPENING_WORDS = 4  # of an opening to avoid, quoted: enough to recognise it


class OpenAIChat:
    def __init__(self, settings: LlmSettings):
        self.settings = settings
        self._client = None

    def load(self) -> None:
        import openai

        self._client = openai.AsyncOpenAI(
            base_url=self.settings.base_url, api_key=self.settings.api_key or "not-needed",
            timeout=self.settings.timeout_s, max_retries=0)

    def describe(self) -> str:
        return f"{self.settings.model} at {self.settings.base_url or 'the OpenAI API'}"

    async def warm(self, messages: list[Message]) -> None:
        pass  # a server keeps its own caches

    async def stream(self, messages: list[Message], generation: Generation) -> AsyncIterator[str]:
        import openai

        where = self.settings.base_url
        try:
            stream = await self._client.chat.completions.create(
                model=generation.model or self.settings.model, stream=True,
                messages=asked_to_avoid(messages, generation.avoid_openings),
                temperature=generation.temperature, max_tokens=generation.max_tokens,
                frequency_penalty=generation.frequency_penalty, presence_penalty=generation.presence_penalty,
                **({} if generation.seed is None else {"seed": generation.seed}))
        except openai.APITimeoutError:  # a subclass of APIConnectionError: check it first
            raise LlmError(f"the LLM server at {where} did not answer within {self.settings.timeout_s:g} s") from None
        except openai.APIConnectionError:
            raise LlmError(f"the LLM server at {where} is unreachable; is it running?") from None
        except openai.APIStatusError as error:
            raise LlmError(f"the LLM server at {where} answered {error.status_code}: "
                           f"{_short(_server_message(error))}") from None
        except openai.OpenAIError as error:
            raise LlmError(f"the LLM server at {where} failed: {_short(str(error))}") from None
        try:
            async for chunk in stream:
                if chunk.choices and chunk.choices[0].delta.content:
                    yield chunk.choices[0].delta.content
                if chunk.choices and chunk.choices[0].finish_reason == "length":
                    yield CUT_SHORT
        except Exception as error:  # a dropped connection surfaces as several types
            raise LlmError(f"the LLM server at {where} failed mid-reply: {_short(str(error)) or type(error).__name__}") from None
        finally:
            await stream.close()  # closing the response stops the server's generation

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.close()


def asked_to_avoid(messages: list[Message], openings: tuple[str, ...]) -> list[Message]:
    """The prompt with a line just before the user's words asking for none of these openings."""
    if not openings:
        return messages
    quoted = " or ".join(f'"{" ".join(text.split()[:OPENING_WORDS])}"' for text in openings)
    line = f"Answer this question directly, in new words, and do not begin with {quoted}."
    return [*messages[:-1], {"role": "system", "content": line}, messages[-1]]


def _short(text: str) -> str:
    return " ".join(text.split())[:200]


def _server_message(error) -> str:
    """The server's own words, without the client's 'Error code: 500 - ' wrapping."""
    body = error.body
    if isinstance(body, dict):
        inner = body.get("error")
        message = inner.get("message") if isinstance(inner, dict) else body.get("message")
        if message:
            return str(message)
    return str(error.message)
