"""The embedded llama.cpp model (the bundled SmolLM2): reading a long unread history in steps."""
from __future__ import annotations

import asyncio
import logging
import re
import time

import pytest

from llm.base import CutShort, Generation
from llm.embedded import READ_STEP_MESSAGES, SLOW_FIRST_TOKEN_S, EmbeddedChat
from llm.settings import LlmSettings

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]

SYSTEM = {"role": "system", "content": "You are a helpful voice assistant. Answer in one short sentence."}
HISTORY = [SYSTEM] + [message for topic in ("owls", "bees", "trains", "chess", "rain", "coffee") for message in (
    {"role": "user", "content": f"Tell me one thing about {topic}."},
    {"role": "assistant", "content": f"Here is one thing many people never notice about {topic} at all."})]
QUESTION = {"role": "user", "content": "What is the capital of France?"}


@pytest.fixture(scope="module")
def chat():
    chat = EmbeddedChat(LlmSettings())
    chat.load()
    yield chat
    asyncio.run(chat.aclose())


def counting_steps(chat: EmbeddedChat) -> list[int]:
    """The length of each prefix the model is asked to read ahead of a reply."""
    steps, complete = [], chat._llama.create_chat_completion

    def spy(messages, **kwargs):
        if kwargs.get("max_tokens") == 1:
            steps.append(len(messages) - 1)  # less the stand-in user turn
        return complete(messages, **kwargs)

    chat._llama.create_chat_completion = spy
    return steps


async def reply(chat: EmbeddedChat, messages) -> str:
    return "".join([piece async for piece in chat.stream(messages, Generation(temperature=0.0, max_tokens=12))])


def persona(name: str) -> list:
    """The history under another system prompt: nothing of it is read yet."""
    return [{"role": "system", "content": f"You are {name}. Answer in one short sentence."}, *HISTORY[1:]]


def test_a_warm_reads_a_new_history_an_exchange_at_a_time(chat):
    steps = counting_steps(chat)
    asyncio.run(chat.warm(persona("a helpful voice assistant")))
    assert steps == list(range(1 + READ_STEP_MESSAGES, len(HISTORY) + 1, READ_STEP_MESSAGES))


def test_a_warm_after_a_reply_reads_only_what_the_history_gained(chat):
    """Stepping from the start would make llama.cpp drop what it holds and read it all again."""
    history = persona("a kind guide")
    asyncio.run(reply(chat, history + [QUESTION]))
    steps = counting_steps(chat)
    asyncio.run(chat.warm(history + [QUESTION, {"role": "assistant", "content": "Paris."}]))
    assert steps == [len(history) + 2]


def test_a_reply_overtakes_a_warm_and_goes_on_from_where_it_stopped(chat):
    steps = counting_steps(chat)
    history = persona("a cheerful guide")

    async def scenario():
        warm = asyncio.ensure_future(chat.warm(history))
        await asyncio.sleep(0)  # the warm's first step is on the model's thread
        answer = await reply(chat, history + [QUESTION])
        await warm
        return answer

    assert asyncio.run(scenario()).strip(), "the reply was answered"
    assert steps[-1] == len(history), "the reply read the rest"
    assert len(steps) <= len(set(steps)) + 1, "only the step in progress as the reply began was read again"


def test_a_reply_reads_a_long_unread_history_in_steps_and_a_dropped_one_frees_the_model_within_one(chat):
    steps = counting_steps(chat)
    asyncio.run(reply(chat, persona("a patient teacher") + [QUESTION]))
    assert steps == list(range(1 + READ_STEP_MESSAGES, len(HISTORY) + 1, READ_STEP_MESSAGES)), "the question with the reply"

    steps.clear()

    async def dropped():
        speculative = asyncio.ensure_future(reply(chat, persona("a quiet teacher") + [QUESTION]))
        await asyncio.sleep(0)
        speculative.cancel()
        await asyncio.gather(speculative, return_exceptions=True)
        await asyncio.get_running_loop().run_in_executor(chat._thread, lambda: None)  # the model is free again

    asyncio.run(dropped())
    assert len(steps) <= 1, "cancelled, it read no more than the step in progress"


def test_a_reply_the_token_limit_ends_says_so_last(chat):
    async def pieces(max_tokens):
        return [piece async for piece in chat.stream([SYSTEM, QUESTION], Generation(temperature=0.0, max_tokens=max_tokens))]

    cut = asyncio.run(pieces(3))
    assert isinstance(cut[-1], CutShort) and not any(isinstance(piece, CutShort) for piece in cut[:-1])
    whole = asyncio.run(pieces(60))
    assert "Paris" in "".join(whole) and not any(isinstance(piece, CutShort) for piece in whole)


def test_one_seed_gives_the_same_reply_and_another_seed_another(chat):
    async def sampled(seed):
        generation = Generation(temperature=1.0, max_tokens=20, seed=seed)
        return "".join([piece async for piece in chat.stream([SYSTEM, QUESTION], generation)])

    first = asyncio.run(sampled(1))
    assert asyncio.run(sampled(1)) == first
    assert any(asyncio.run(sampled(seed)) != first for seed in (2, 3, 4))


def test_a_reply_told_to_avoid_openings_begins_otherwise(chat):
    """A second try: "The capital of France is Paris." refused, the likeliest reply began so again."""
    async def greedy(*avoid):
        generation = Generation(temperature=0.0, max_tokens=12, avoid_openings=avoid)
        return "".join([piece async for piece in chat.stream([SYSTEM, QUESTION], generation)])

    likeliest = asyncio.run(greedy())
    other = asyncio.run(greedy(likeliest))
    assert other.split()[0] != likeliest.split()[0] and "Paris" in other, (likeliest, other)
    third = asyncio.run(greedy(likeliest, other))
    assert third.split()[0] not in {likeliest.split()[0], other.split()[0]}
    assert asyncio.run(greedy()) == likeliest, "the ban was for those replies only"


def test_a_late_first_token_is_logged_with_where_the_time_went(chat, caplog):
    async def reply_while_the_thread_is_busy():
        chat._thread.submit(time.sleep, SLOW_FIRST_TOKEN_S + 0.1)  # another model's work, say
        return await reply(chat, [SYSTEM, QUESTION])

    with caplog.at_level(logging.WARNING, logger="llm.embedded"):
        asyncio.run(reply(chat, [SYSTEM, QUESTION]))
        assert not caplog.records, "a prompt read at once"
        asyncio.run(reply_while_the_thread_is_busy())
    [record] = caplog.records
    waited_ms = int(re.search(r"began to be read after (\d+) ms", record.getMessage()).group(1))
    assert waited_ms >= (SLOW_FIRST_TOKEN_S + 0.1) * 1000 - 10, record.getMessage()
