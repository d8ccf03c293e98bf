"""The repeat guard, on replies the bundled 135M model gave in the dialogue benchmark."""
from __future__ import annotations

import asyncio

import pytest

from conversation.chunker import Chunker
from conftest import write_config
from conversation.config import load_config
from conversation.dialogue import Dialogue
from conversation.repeat_guard import RepeatGuard
from conversation.repeats import NOTHING_NEW, ends_a_sentence, is_nothing_new, near_duplicate, recites
from llm.base import CUT_SHORT, Generation

pytestmark = pytest.mark.fast

SYSTEM_PROMPT = ("You are a helpful voice assistant having a spoken conversation. Answer in one or two short "
                 "sentences, in plain spoken English. Never use lists, markdown, code or emoji.")
BREAKFAST = ("The answer to this question is that it's a great way to start your day with a healthy breakfast, "
             "and it can also be a great way to fuel your body and mind throughout the day.")
WEEKEND = ("The answer to this question is that it's a great way to start your weekend with a healthy breakfast, "
           "and it can also be a great way to fuel your body and mind on a lazy Saturday.")
BEES = "Bees collect nectar from flowers and store it in their honeycomb cells. They use it to make honey."


def test_a_near_duplicate_shares_most_of_its_words_with_an_earlier_reply():
    assert near_duplicate(WEEKEND, BREAKFAST)
    assert not near_duplicate(BEES, BREAKFAST)
    assert not near_duplicate("The capital of Australia is Canberra.", "The capital of France is Paris.")


def test_function_words_are_no_repeat():
    """Every reply holds "the", "is", "and": a new answer found most of them in some earlier one."""
    earlier = "Bees are busy at night and they can be loud in their hives."
    assert not near_duplicate("Owls hunt at night and they can turn their heads.", earlier)


def test_a_recital_is_six_words_in_a_row_of_the_system_prompt():
    assert recites("Well, I am a helpful voice assistant having a spoken chat.", SYSTEM_PROMPT)
    assert not recites("I can help with that, in plain words.", SYSTEM_PROMPT)


def guard(*earlier: str) -> RepeatGuard:
    return RepeatGuard(list(earlier), SYSTEM_PROMPT)


def test_a_sentence_that_says_again_what_an_earlier_reply_said_is_refused():
    judge = guard(BREAKFAST, "The capital of Australia is Canberra.")
    assert judge.why_not("The answer to this question is that it's a great way to start your weekend,")
    assert judge.why_not(BEES.split(". ")[0] + ".") is None


def test_short_pieces_are_judged_only_as_part_of_more():
    judge = guard("Sure. I can help with that.", BREAKFAST)
    assert judge.admit("Sure.")
    assert judge.admit("The answer is")  # every reply shares these words; what follows decides
    assert judge.why_not("that it's a great way to start your day with a healthy breakfast.")


def test_a_piece_with_one_content_word_is_not_judged_on_it_alone():
    """One word found again in some earlier reply is chance, not a repeat."""
    judge = RepeatGuard(["That's a good one."], SYSTEM_PROMPT, asked="Tell me a story about a lighthouse keeper.")
    assert judge.why_not("The lighthouse keeper, one of the most") is None
    assert guard("The volcanoes, they're a part of nature.").why_not("The coffee, it's a part of") is None


def test_a_reply_may_not_open_with_the_words_an_earlier_one_opened_with():
    earlier = "The most popular way to make coffee is to brew it in a French press."
    assert guard(earlier).why_not("The most popular way") == "opens the way an earlier reply did"
    assert guard(earlier).admit("The most common reason cats purr is contentment.")
    judge = guard("Sure! I can help with that.")
    assert judge.admit("Sure!") and judge.admit("Pick a sunny day and a shady park.")  # too short to be an opener


def test_a_reply_that_would_sound_like_an_earlier_one_if_cut_off_is_refused():
    """The user's next words may cut a reply anywhere: what they heard so far must be new too."""
    dolphins = ("People love dolphins, but they're actually a type of marine mammal that belongs "
                "to the family Cetacea.")
    castles = "People love castles, but they're actually a type of fortified home built by medieval lords."
    asked = "Why do people love castles?"
    assert RepeatGuard([dolphins], SYSTEM_PROMPT, asked).why_not(castles) == "repeats an earlier reply"
    assert RepeatGuard([dolphins], SYSTEM_PROMPT, asked).admit("Castles were built by medieval lords to guard land.")


def test_words_that_echo_the_question_are_no_repeat():
    penguins = ("One thing about penguins is they're carnivores. They eat fish, squid, and other marine life. "
                "They can also be predators of seals and other marine animals.")
    echo = "One thing about volcanoes is they're home to"
    assert RepeatGuard([penguins], SYSTEM_PROMPT, asked="Tell me one thing about volcanoes.").admit(echo)


def test_a_sentence_that_repeats_one_of_the_same_reply_is_refused():
    judge = guard()
    assert judge.admit("The answer to that question is actually 8.")
    assert not judge.admit("So the answer is 8.")
    assert judge.dropped == ["So the answer is 8."]


def test_a_piece_that_goes_on_with_a_sentence_is_judged_with_the_whole_sentence():
    judge = guard("Photosynthesis is the process by which plants convert light energy into chemical energy, "
                  "which they use to grow and support life on Earth.")
    assert judge.admit("The tallest mountain in the world is Mount Everest,")
    assert judge.admit("which is the highest peak on Earth.")  # alone, 5 of its 7 words were said before


def test_a_recital_of_the_system_prompt_is_refused_even_across_two_pieces():
    judge = guard()
    assert judge.admit("As a helpful voice assistant,")
    assert judge.why_not("having a spoken conversation is what I do.") == "recites the system prompt"


def test_the_guard_for_a_prompt_reads_its_system_prompt_and_earlier_replies():
    messages = [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": "What's a good breakfast?"},
                {"role": "assistant", "content": BREAKFAST}, {"role": "system", "content": "Reply in German."},
                {"role": "user", "content": "And for the weekend?"}]
    judge = RepeatGuard.for_prompt(messages)
    assert judge.system_prompt == SYSTEM_PROMPT and judge.earlier_replies == [BREAKFAST]


class ScriptedChat:
    """Streams scripted replies word by word, recording each request and whether it ran to its end."""

    def __init__(self, *replies: str, cut_short: bool = False):
        self.replies = list(replies)
        self.cut_short = cut_short  # each reply ends at the token limit
        self.requests: list[tuple[list, Generation]] = []
        self.finished: list[bool] = []
        self.streamed = 0  # words given so far

    async def stream(self, messages, generation):
        self.requests.append((messages, generation))
        reply = self.replies[min(len(self.requests), len(self.replies)) - 1]
        self.finished.append(False)
        for index, word in enumerate(reply.split()):
            await asyncio.sleep(0)
            self.streamed += 1
            yield ("" if index == 0 else " ") + word
        if self.cut_short:
            yield CUT_SHORT
        self.finished[-1] = True


def say(chat: ScriptedChat, *earlier: str, asked: str = "What should I do this weekend?") -> list[str]:
    return [sentence for sentence, _ in say_when(chat, *earlier, asked=asked)]


def say_when(chat: ScriptedChat, *earlier: str, asked: str = "What should I do this weekend?"
             ) -> list[tuple[str, int]]:
    """Each sentence said, with the words the chat had streamed when it was let go."""
    messages = [{"role": "system", "content": SYSTEM_PROMPT}]
    for reply in earlier:
        messages += [{"role": "user", "content": "Tell me more."}, {"role": "assistant", "content": reply}]
    messages.append({"role": "user", "content": asked})

    async def run():
        fresh = RepeatGuard.for_prompt(messages).fresh_sentences(
            chat.stream, messages, Generation(temperature=0.5, max_tokens=60), lambda: Chunker(150, 3))
        return [(sentence, chat.streamed) async for sentence in fresh]

    return asyncio.run(run())


def test_a_reply_that_opens_with_a_repeat_is_generated_once_more_less_repetitively():
    chat = ScriptedChat(WEEKEND, BEES)
    assert " ".join(say(chat, BREAKFAST)) == BEES
    (first, first_settings), (second, second_settings) = chat.requests
    assert chat.finished == [False, True], "the repeat was not generated to its end"
    assert second == first, "the prompt read for the first try is asked again: its first token comes at once"
    assert second_settings.temperature > first_settings.temperature
    assert second_settings.frequency_penalty > first_settings.frequency_penalty
    refused, = second_settings.avoid_openings
    assert WEEKEND.startswith(refused) and not first_settings.avoid_openings


def test_a_second_try_shaped_like_an_earlier_reply_is_said_rather_than_nothing_new():
    penguins = "People love penguins because of their funny walk and their role in nature."
    chat = ScriptedChat("People love bees because of their funny walk and their role in nature.",
                        "People love bees because of their busy, unique role in nature.")
    assert " ".join(say(chat, penguins, asked="Why do people like bees?")) == chat.replies[1]
    assert RepeatGuard([penguins], SYSTEM_PROMPT, "Why do people like bees?").why_not(
        "People love bees because of their funny walk and their role,"), "a first try would have been refused"


def test_a_reply_with_nothing_new_says_so_rather_than_nothing():
    chat = ScriptedChat(WEEKEND)
    assert say(chat, BREAKFAST) == [NOTHING_NEW[0]]
    assert len(chat.requests) == 3


def test_saying_nothing_new_again_takes_new_words_and_stays_out_of_the_history(tmp_path):
    """The same line said twice would itself be a repeat, and the model would copy it."""
    dialogue = Dialogue(load_config(write_config(tmp_path)))
    lines = []
    for _ in NOTHING_NEW:
        lines.append(dialogue.nothing_new())
        dialogue.add_exchange("What else about the moon?", lines[-1])
    assert sorted(lines) == sorted(NOTHING_NEW) and not dialogue.history.turns and not dialogue.replies
    assert not any(near_duplicate(a, b) for a in NOTHING_NEW for b in NOTHING_NEW if a is not b)
    assert is_nothing_new(NOTHING_NEW[1][:20]), "cut off, it is still not for the model to copy"
    assert not is_nothing_new(BEES) and not is_nothing_new("") and not is_nothing_new("I have"), "a real reply, cut"


def test_the_history_after_an_exchange_is_foreseen_trim_and_all(tmp_path):
    dialogue = Dialogue(load_config(write_config(tmp_path, **{"llm.context_tokens": 300})))
    for turn in range(20):
        foreseen = dialogue.history_after(f"Question {turn}?", BEES)
        dialogue.add_exchange(f"Question {turn}?", BEES)
        assert dialogue.history.messages() == foreseen
    assert dialogue.history.trims >= 2, "exchanges trimmed the history"
    assert dialogue.history_after("More?", NOTHING_NEW[0]) == dialogue.history.messages()


def test_with_a_seed_each_reply_samples_with_its_own(tmp_path):
    """Seeded alike, every reply drew the same random numbers: with one seed, each began in French."""
    assert Dialogue(load_config(write_config(tmp_path))).generation().seed is None
    dialogue = Dialogue(load_config(write_config(tmp_path, **{"llm.seed": 3})))
    seeds = []
    for turn in range(3):
        seeds.append(dialogue.generation().seed)
        assert dialogue.generation().seed == seeds[-1], "a reply asked again (held, then heard) samples alike"
        dialogue.add_exchange(f"Question {turn}?", BEES)
    assert len(set(seeds)) == 3


def test_a_third_try_hears_only_the_system_prompt_and_the_question_and_begins_like_neither_try():
    """The model cannot copy a reply it does not see."""
    again = "A healthy breakfast is a great way to start your day and to fuel your body and mind throughout the day."
    chat = ScriptedChat(WEEKEND, again, BEES)
    assert " ".join(say(chat, BREAKFAST)) == BEES
    third, settings = chat.requests[2]
    assert third == [chat.requests[0][0][0], chat.requests[0][0][-1]] and settings.temperature >= 0.9
    assert [WEEKEND.startswith(text) for text in settings.avoid_openings] == [True, False]
    assert again.startswith(settings.avoid_openings[1])


def test_a_third_try_is_judged_whole_not_at_every_word_it_could_be_cut_at():
    """Its last chance: a new answer that opens like an earlier one beats saying nothing new."""
    earlier = "I can help you plan that. Pick a quiet evening."
    opens_alike = "I can help you plan that by picking a film for tonight."
    chat = ScriptedChat(opens_alike, opens_alike, opens_alike)
    assert " ".join(say(chat, earlier)) == opens_alike
    assert len(chat.requests) == 3


def test_an_opening_that_echoes_the_question_waits_to_be_judged_with_what_follows():
    penguins = "People like penguins for many reasons, and one of them is that they're a very special type of bird."
    templated = "People like bees for many reasons, and one of them is that they're a very special type of insect."
    chat = ScriptedChat(templated, "Bees make honey and keep flowers blooming.")
    assert say(chat, penguins, asked="Why do people like bees?") == [chat.replies[1]]


def test_an_opening_judged_as_a_whole_is_still_voiced_in_the_pieces_it_was_cut_into():
    """Its short first clause goes to the synthesizer alone, so the first audio comes sooner."""
    reply = "People like bees for many reasons, and one of them is that bees make honey."
    assert say(ScriptedChat(reply), BREAKFAST, asked="Why do people like bees?") == [
        "People like bees for many reasons,", "and one of them is that bees make honey."]


def test_an_opening_is_judged_with_the_words_after_it_as_soon_as_they_say_enough():
    """Not once the rest of a long first sentence is cut: that was heard up to 490 ms later."""
    reply = ("The bees are a remarkable and mysterious creatures with a long history of living together in "
             "colonies and making honey for their young.")
    said = say_when(ScriptedChat(reply), BREAKFAST, asked="Tell me one thing about bees.")
    assert [sentence for sentence, _ in said] == ["The bees are a remarkable", reply[len("The bees are a remarkable "):]]
    assert said[0][1] == len("The bees are a remarkable and mysterious".split()), "let go as soon as it is cut"
    stale = "The bees are a remarkable and mysterious creatures, they live in hives."
    chat = ScriptedChat(reply, BEES)
    assert " ".join(say(chat, stale, asked="Tell me one thing about bees.")) == BEES, "judged with what follows"
    assert len(chat.requests) == 2


def test_a_reply_whose_first_sentence_turns_into_a_repeat_after_its_opening_was_spoken_starts_anew():
    """Ended there, the reply sounded cut off: "One thing about trains is"."""
    earlier = "Penguins are amazing swimmers, and they huddle together to keep warm in the icy wind."
    copied = "One thing about trains is that they carry people, and they huddle together to keep warm in the icy wind."
    fresh = "Trains carry people and goods across whole countries every day."
    chat = ScriptedChat(copied, fresh)
    assert say(chat, earlier, asked="Tell me one thing about trains.") == ["One thing about trains is", fresh]
    assert len(chat.requests) == 2


def test_a_reply_the_token_limit_cut_mid_sentence_ends_on_its_last_whole_sentence():
    reply = "Bees make honey from nectar. They also pollinate flowers such as"
    assert say(ScriptedChat(reply, cut_short=True), BREAKFAST) == ["Bees make honey from nectar."]
    assert say(ScriptedChat(reply), BREAKFAST)[-1] == "They also pollinate flowers such as", "the model ended there"
    one = "Bees make honey from the nectar they collect from"
    assert say(ScriptedChat(one, cut_short=True), BREAKFAST) == [one], "better than nothing at all"


def test_a_repeat_later_in_a_reply_ends_it_there():
    chat = ScriptedChat(f"Go to the farmers market on Saturday morning. {WEEKEND} Then relax.")
    spoken = say(chat, BREAKFAST)
    assert " ".join(spoken) == "Go to the farmers market on Saturday morning."
    assert len(chat.requests) == 1 and chat.finished == [False]


def test_a_short_opening_waits_for_what_follows_so_a_repeat_after_it_is_not_left_hanging():
    joke = "The perfect joke: why did the chicken cross the road? To get to the other side."
    assert " ".join(say(ScriptedChat(joke, BEES), joke)) == BEES
    assert say(ScriptedChat("Sure."), joke) == ["Sure."]
    assert say(ScriptedChat("The answer is:", "Canberra."), "The answer is:") == ["Canberra."]


def test_a_new_reply_is_said_whole_and_an_empty_one_is_left_to_the_caller():
    assert " ".join(say(ScriptedChat(BEES), BREAKFAST)) == BEES
    assert say(ScriptedChat("")) == []


def test_an_opening_that_trails_off_is_judged_with_what_follows():
    """Cut at its ellipsis to be voiced sooner, "The ocean..." is no sentence a reply could end on."""
    earlier = "Oceans are vast, and they hide whole mountain ranges under the waves."
    copied = "The ocean... they hide whole mountain ranges under the waves."
    fresh = "The ocean covers most of the planet and feeds the rain."
    chat = ScriptedChat(copied, fresh)
    assert " ".join(say(chat, earlier, asked="Tell me one thing about the ocean.")) == fresh
    assert not ends_a_sentence("The ocean...") and ends_a_sentence("What...?")
