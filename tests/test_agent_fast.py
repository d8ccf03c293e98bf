"""The Agent's turn-taking on a virtual clock, with fake models: seconds for the whole file.

Each test scripts what the user says (tagged buzzes the real endpointer hears
as speech) and checks what the agent did: the turn log, the history, the
speaker signal, the tasks left behind.
"""
from __future__ import annotations

import asyncio

import pytest

from agent_harness import Say, Wait, converse, make_harness
from conversation.repeats import NOTHING_NEW
from conversation.responder import APOLOGY
from conversation.turn import Phase
from fakes import NOISE
from llm.base import LlmError
from llm.history import INTERRUPTED_NOTE

pytestmark = pytest.mark.fast

STORY = "Once upon a time there was a king. He had three sons. The first was tall. The second was short."


def test_a_question_is_answered_once_the_user_is_done(tmp_path):
    h = make_harness(tmp_path, {1: "What time is it?"}, "It is noon. Have a nice day.")
    converse(h, Wait(0.5), Say(1, 1.2), Wait(0.5))
    [turn] = h.turns
    assert (turn["user_text"], turn["agent_text"]) == ("What time is it?", "It is noon. Have a nice day.")
    assert not h.sound_between(0, 1.7), "the agent spoke over the user"
    assert 1.7 < h.first_sound_after(1.7) < 1.7 + 0.8, "words and voice both finished: an early end"
    assert h.agent.dialogue.history.turns == [{"role": "user", "content": "What time is it?"},
                                              {"role": "assistant", "content": "It is noon. Have a nice day."}]
    assert [t.phase for t in h.started] == [Phase.DONE]
    assert h.leftover == []


def test_the_voice_is_judged_once_the_prompt_is_read_not_beside_the_llm_reading_it(tmp_path):
    h = make_harness(tmp_path, {1: "I would like to know the time."}, "It is noon. Have a nice day.")
    when_judged = []
    h.smart_turn.on_call = lambda: when_judged.append(
        (h.agent.current.llm_first_token is not None, len(h.synthesizer.requests)))
    converse(h, Wait(0.5), Say(1, 1.2), Wait(0.5))
    assert when_judged == [(True, 0)], "after the first token, without waiting for the first audio"
    assert 1.7 < h.first_sound_after(1.7) < 1.7 + 0.8, "the early end still came"


def test_a_voice_that_sounds_unfinished_waits_for_the_hangover(tmp_path):
    h = make_harness(tmp_path, {1: "I would like to know the time."}, "Noon.", smart_turn=0.1)
    converse(h, Wait(0.5), Say(1, 1.2), Wait(0.5))
    [turn] = h.turns
    assert turn["voice_complete"] == 0.1
    assert h.first_sound_after(1.7) >= 1.7 + 1.3, "Smart Turn vetoed the early end"


@pytest.mark.parametrize("said", ["What time is it?", "Switch to the storyteller.", "Tell me the time."])
def test_a_plain_question_request_or_command_ends_early_whatever_the_voice_says(tmp_path, said):
    h = make_harness(tmp_path, {1: said}, "Noon.", smart_turn=0.1)
    converse(h, Wait(0.5), Say(1, 1.2), Wait(0.5))
    assert h.turns[0]["voice_complete"] is None, "the voice was not asked"
    assert 1.7 + 0.3 <= h.first_sound_after(1.7) < 1.7 + 0.8


def test_after_a_long_pause_mid_turn_a_short_one_does_not_end_it(tmp_path):
    """The user went on after 0.25 s of silence: the next 0.4 s (past turn.min_silence_ms) is no end of turn."""
    h = make_harness(tmp_path, {1: "Tell me the time."}, "Noon.")
    converse(h, Wait(0.5), Say(1, 0.8), Wait(0.25), Say(1, 0.8), Wait(0.4), Say(1, 0.6), Wait(2.0))
    assert len(h.turns) == 1, "the turn was split"


def test_words_that_dangle_wait_for_the_hangover(tmp_path):
    h = make_harness(tmp_path, {1: "And so my"}, "Go on.")
    converse(h, Wait(0.5), Say(1, 1.0), Wait(0.5))
    assert h.turns[0]["user_text"] == "And so my"
    assert h.first_sound_after(1.5) >= 1.5 + 1.3


def test_a_held_reply_is_dropped_unheard_when_the_user_goes_on(tmp_path):
    h = make_harness(tmp_path, {1: "I want to know", 2: "the weather in Paris."}, STORY, "It is sunny in Paris.")
    converse(h, Wait(0.5), Say(1, 1.0), Wait(0.3), Say(2, 1.0), Wait(0.5))
    [turn] = h.turns
    assert turn["user_text"] == "I want to know the weather in Paris."
    assert turn["agent_text"] == "It is sunny in Paris."
    assert not h.sound_between(0, 2.8), "the speculative reply was heard"
    assert h.chat.closed_early == 1 and len(h.chat.requests) == 2
    assert [t.phase for t in h.started] == [Phase.SUPERSEDED, Phase.DONE]


def test_barge_in_stops_the_reply_at_once_and_the_interruption_is_answered(tmp_path):
    h = make_harness(tmp_path, {1: "Tell me a story.", 2: "Stop, please."}, STORY, "Okay, stopping.")
    converse(h, Wait(0.5), Say(1, 1.0), Wait(2.0), Say(2, 1.0), Wait(0.5))
    first, second = h.turns
    assert first["interrupted"] and not second["interrupted"]
    assert 3.5 <= first["barge_in_at"] <= 3.6
    assert first["playback_stopped_at"] - first["barge_in_at"] < 0.15
    assert not h.sound_between(3.65, 4.5), "still talking over the user"
    assert len(first["heard_text"]) < len(first["agent_text"])
    assert second["user_text"] == "Stop, please." and second["agent_text"] == "Okay, stopping."
    assert INTERRUPTED_NOTE in [m["content"] for m in h.agent.dialogue.history.turns]
    cut = [warmed for warmed in h.chat.warmed if warmed and INTERRUPTED_NOTE in warmed[-1]["content"]]
    assert cut, "the cut reply was read while the user talked"
    assert h.chat.requests[1][:len(cut[0])] == cut[0]
    assert [t.phase for t in h.started if t.user_text] == [Phase.INTERRUPTED, Phase.DONE]
    assert h.leftover == []


def test_a_cough_only_pauses_the_reply(tmp_path):
    h = make_harness(tmp_path, {1: "Tell me a story."}, STORY)
    converse(h, Wait(0.5), Say(1, 1.0), Wait(1.5), Say(NOISE, 0.12), Wait(0.5))
    [turn] = h.turns
    assert not turn["interrupted"] and turn["heard_text"] == turn["agent_text"]
    assert h.sound_between(3.5, 5.0), "playback resumed after the cough"


def test_a_short_word_then_a_pause_then_more_is_an_interruption(tmp_path):
    """ "Wait, ..." : the word alone is too short to cut in, but the rest must not be talked over."""
    h = make_harness(tmp_path, {1: "Tell me a story.", 2: "Wait,", 3: "tell me about cats instead."},
                     STORY, "Cats purr.")
    converse(h, Wait(0.5), Say(1, 1.0), Wait(2.0), Say(2, 0.2), Wait(0.3), Say(3, 1.0), Wait(0.5))
    first, second = h.turns
    assert first["interrupted"]
    assert not h.sound_between(4.15, 5.0), "talked over the rest of the interruption"
    assert second["user_text"] == "Wait, tell me about cats instead." and second["agent_text"] == "Cats purr."


def test_a_noise_long_enough_to_cut_in_gets_the_rest_of_the_reply_said(tmp_path):
    h = make_harness(tmp_path, {1: "Tell me a story."}, STORY)
    converse(h, Wait(0.5), Say(1, 1.0), Wait(2.0), Say(NOISE, 0.6), Wait(0.5))
    cut, resumed = h.turns
    assert cut["interrupted"]
    assert resumed["resumes"] is not None and STORY.endswith(resumed["agent_text"])
    assert h.agent.dialogue.history.turns[-1] == {"role": "assistant", "content": STORY}


def test_the_words_of_a_reply_cut_before_it_spoke_join_the_next_utterance(tmp_path):
    h = make_harness(tmp_path, {1: "What is the capital?", 2: "Of France, I mean."},
                     "Paris.", "It is Paris.", first_token_s=1.5)
    converse(h, Wait(0.5), Say(1, 1.0), Wait(0.7), Say(2, 1.0), Wait(0.5))
    [turn] = h.turns
    assert turn["user_text"] == "What is the capital? Of France, I mean."
    assert h.transcriber.heard[-1] == [1, 2]
    assert not h.sound_between(0, 3.2)


def test_typed_text_cuts_off_the_reply_in_flight(tmp_path):
    h = make_harness(tmp_path, {}, STORY, "Fine.")
    typed = {0.2: "Tell me a story.", 2.0: "Actually, never mind."}
    tasks = []
    converse(h, Wait(3.0), during=lambda t: tasks.append(h.agent.on_text(typed.pop(t))) if t in typed else None)
    first, second = h.turns
    assert first["interrupted"] and first["user_text"] == "Tell me a story."
    assert second["user_text"] == "Actually, never mind." and second["agent_text"] == "Fine."
    assert all(task.done() for task in tasks)


def test_a_barge_in_while_sentences_wait_for_the_synthesizer_leaves_no_task_behind(tmp_path):
    # The synthesizer stalls on "Two." while the LLM fills the sentence queue and waits to add more.
    h = make_harness(tmp_path, {1: "Count for me.", 2: "Stop."}, "One. Two. Three. Four. Five. Six.", "Okay.",
                     stall_on=("Two.",))
    converse(h, Wait(0.5), Say(1, 1.0), Wait(0.6), Say(2, 1.0), Wait(0.5))
    first, second = h.turns
    assert first["interrupted"] and second["agent_text"] == "Okay."
    assert h.leftover == [], f"tasks left pending: {h.leftover}"
    assert h.chat.closed_early == 1


def test_a_failing_llm_is_apologised_for_and_the_next_turn_works(tmp_path):
    h = make_harness(tmp_path, {1: "Hello there.", 2: "Are you back?"}, LlmError("the server is down"), "Yes.")
    converse(h, Wait(0.5), Say(1, 1.0), Wait(4.0), Say(2, 1.0), Wait(0.5))
    failed, answered = h.turns
    assert failed["error"] == "the server is down" and failed["agent_text"].endswith(APOLOGY)
    assert "the server is down" in h.reporter.errors
    assert answered["agent_text"] == "Yes." and answered["error"] is None


def test_an_empty_reply_is_an_error_said_aloud(tmp_path):
    h = make_harness(tmp_path, {1: "Hello there."}, "")
    converse(h, Wait(0.5), Say(1, 1.0), Wait(0.5))
    [turn] = h.turns
    assert "empty reply" in turn["error"] and turn["agent_text"] == APOLOGY


def test_a_spoken_persona_switch_needs_no_llm_and_the_next_reply_uses_it(tmp_path):
    h = make_harness(tmp_path, {1: "Switch to the storyteller.", 2: "Tell me something."}, "A tale.")
    converse(h, Wait(0.5), Say(1, 1.2), Wait(2.0), Say(2, 1.0), Wait(0.5))
    switch, reply = h.turns
    assert switch["command"] == "persona:storyteller" and switch["agent_text"] == "Switched to storyteller."
    assert len(h.chat.requests) == 1
    assert h.chat.requests[0][0]["content"] == h.agent.config.personas["storyteller"].system_prompt
    assert h.chat.requests[0][:-1] in h.chat.warmed, "the new prompt and the switch were read before the reply"
    assert reply["persona"] == "storyteller" and reply["voice"] == "joe_slow"
    assert h.first_sound_after(1.7) < 1.7 + 0.8, "a command ends the turn early like any other"


def test_a_switch_is_confirmed_in_the_new_voice_synthesized_before_the_turn_is_over(tmp_path):
    h = make_harness(tmp_path, {1: "Switch to the storyteller."})
    synthesized = []
    stream = h.synthesizer.stream
    h.synthesizer.stream = lambda request: (synthesized.append((request.voice, h.agent.current.phase)),
                                            stream(request))[1]
    converse(h, Wait(0.5), Say(1, 1.2), Wait(1.5))
    [switch] = h.turns
    assert synthesized == [(h.agent.config.voices["joe_slow"], Phase.HELD)]
    assert switch["playback_start"] - switch["committed"] < 0.05, "heard at the commit"


def test_a_switch_the_user_talks_on_after_is_not_made(tmp_path):
    h = make_harness(tmp_path, {1: "Switch to the storyteller.", 2: "and then tell me a story."}, "Here goes.")
    converse(h, Wait(0.5), Say(1, 1.2), Wait(0.2), Say(2, 1.0), Wait(1.5))
    [turn] = h.turns
    assert turn["command"] is None and turn["persona"] == "assistant" and turn["agent_text"] == "Here goes."
    assert h.agent.persona_name == "assistant"
    assert not h.sound_between(0, 2.9), "the held confirmation was heard"


def test_the_history_is_read_after_each_reply_before_the_next_question(tmp_path):
    """The reply as heard is not always the tokens generated (line breaks, markdown): read it while the user thinks."""
    h = make_harness(tmp_path, {1: "What time is it?", 2: "And the date?"}, "It is **noon**.\n\nHave a nice day.",
                     "Monday.")
    converse(h, Wait(0.5), Say(1, 1.0), Wait(3.0), Say(2, 1.0), Wait(0.5))
    first, second = h.chat.requests
    assert first[:-1] + [{"role": "user", "content": "What time is it?"},
                         {"role": "assistant", "content": "It is noon. Have a nice day."}] in h.chat.warmed
    assert second[:-1] in h.chat.warmed


def test_while_the_reply_plays_the_history_it_will_leave_is_read(tmp_path):
    """After a trim the whole history is new: read only once the reply had played, it was still being read
    when the next question came."""
    h = make_harness(tmp_path, {1: "Tell me a story."}, STORY)
    playing_when_read = []
    warm = h.chat.warm

    async def noting(messages):
        playing_when_read.append((messages[-1]["content"], h.agent.player.busy))
        await warm(messages)

    h.chat.warm = noting
    converse(h, Wait(0.5), Say(1, 1.0), Wait(6.0))
    assert (STORY, True) in playing_when_read


def test_our_own_voice_coming_back_is_not_a_turn(tmp_path):
    h = make_harness(tmp_path, {1: "What colour is the sky?", 2: "The sky is blue today."}, "The sky is blue today.")
    converse(h, Wait(0.5), Say(1, 1.0), Wait(3.0), Say(2, 1.0), Wait(0.5))
    assert [turn["user_text"] for turn in h.turns] == ["What colour is the sky?"]


def test_speech_behind_a_shut_echo_gate_is_answered_once_the_reply_ends(tmp_path):
    h = make_harness(tmp_path, {1: "Tell me a story.", 2: "What is the time?"}, STORY, "It is noon.")
    converse(h, Wait(0.5), Say(1, 1.0), Wait(2.0), Say(2, 1.0), Wait(0.5), cold_echo_gate=True)
    story, question = h.turns
    assert not story["interrupted"] and story["heard_text"] == STORY, "a cold gate cannot tell the user: no cut"
    assert question["user_text"] == "What is the time?" and question["agent_text"] == "It is noon."
    assert question["overheard"] and question["speech_start"] == pytest.approx(3.5, abs=0.1)
    assert h.first_sound_after(question["endpoint"]) is not None


def test_our_own_echo_behind_the_gate_is_let_go(tmp_path):
    h = make_harness(tmp_path, {1: "Tell me a story.", 2: "He had three sons. The first was tall."}, STORY)
    converse(h, Wait(0.5), Say(1, 1.0), Wait(2.0), Say(2, 1.0), Wait(0.5), cold_echo_gate=True)
    assert [turn["user_text"] for turn in h.turns] == ["Tell me a story."]
    assert len(h.chat.requests) == 1


def test_speech_still_going_when_the_gate_opens_is_one_turn(tmp_path):
    h = make_harness(tmp_path, {1: "Hi.", 2: "Tell me about the weather tomorrow."}, "Hello there, how are you?",
                     "Sunny.")
    converse(h, Wait(0.5), Say(1, 0.6), Wait(1.4), Say(2, 3.0), Wait(0.5), cold_echo_gate=True)
    hello, weather = h.turns  # the greeting ends at 2.9 s and the gate opens at 3.4 s, mid-sentence
    assert not hello["interrupted"]
    assert weather["user_text"] == "Tell me about the weather tomorrow." and weather["agent_text"] == "Sunny."
    assert weather["speech_start"] == pytest.approx(2.5, abs=0.1), "the words behind the gate open the turn"


def test_a_noise_alone_is_no_turn(tmp_path):
    h = make_harness(tmp_path, {}, "Hm?")
    converse(h, Wait(0.5), Say(NOISE, 0.6), Wait(0.5))
    assert h.turns == [] and h.chat.requests == []
    assert h.started and all(t.phase in (Phase.SUPERSEDED, Phase.DONE) for t in h.started)


def test_with_barge_in_off_the_user_still_gets_an_answer_after_speaking(tmp_path):
    h = make_harness(tmp_path, {1: "Tell me a story.", 2: "Stop, please."}, STORY, "Okay.",
                     **{"barge_in.enabled": False})
    converse(h, Wait(0.5), Say(1, 1.0), Wait(2.0), Say(2, 1.0), Wait(0.5))
    first, second = h.turns
    assert first["barge_in_at"] is None and h.sound_between(3.6, 4.4), "playback went on over the user"
    assert first["interrupted"] and second["agent_text"] == "Okay."


def test_shutting_down_mid_reply_stops_everything(tmp_path):
    h = make_harness(tmp_path, {1: "Tell me a story."}, STORY)

    def stop_at(t):
        if abs(t - 2.5) < 1e-9:
            h.stopping = asyncio.ensure_future(h.agent.cancel_all())

    converse(h, Wait(0.5), Say(1, 1.0), Wait(2.0), during=stop_at)
    [turn] = h.turns
    assert turn["interrupted"] and h.stopping.done()
    assert not h.sound_between(2.6, 3.5)
    assert h.leftover == []


def test_the_person_sees_hearing_thinking_speaking_listening(tmp_path):
    h = make_harness(tmp_path, {1: "What time is it?"}, "Noon.", first_token_s=1.5)
    converse(h, Wait(0.5), Say(1, 1.2), Wait(0.5))
    states = [s for i, s in enumerate(h.reporter.states) if i == 0 or s != h.reporter.states[i - 1]]
    assert states == ["listening", "hearing you", "thinking", "speaking", "listening"]
    assert h.reporter.users == ["What time is it?"] and h.reporter.spoken == ["Noon."]


WEATHER = "It is sunny and warm in Paris today, with a light breeze from the west."


def test_a_reply_that_repeats_an_earlier_one_is_generated_again_before_it_is_heard(tmp_path):
    h = make_harness(tmp_path, {1: "What is the weather?", 2: "And tomorrow?"}, WEATHER, WEATHER,
                     "Rain is coming tomorrow, so take an umbrella.")
    converse(h, Wait(0.5), Say(1, 1.0), Wait(8.0), Say(2, 1.0), Wait(0.5))
    assert [turn["agent_text"] for turn in h.turns] == [WEATHER, "Rain is coming tomorrow, so take an umbrella."]
    assert len(h.chat.requests) == 3 and h.chat.closed_early == 1
    assert h.chat.requests[2] == h.chat.requests[1], "asked again with the prompt read for the first try"
    assert [turn["llm_tries"] for turn in h.turns] == [1, 2]
    assert h.chat.warmed[-1] == h.agent.dialogue.history.messages(), "the prompt after a second try was read again"


def test_a_reply_with_nothing_new_says_so_and_leaves_the_history_as_it_was(tmp_path):
    h = make_harness(tmp_path, {1: "What is the weather?", 2: "And tomorrow?"}, WEATHER)
    converse(h, Wait(0.5), Say(1, 1.0), Wait(8.0), Say(2, 1.0), Wait(0.5))
    assert not h.turns[0]["interrupted"] and h.turns[1]["agent_text"] == NOTHING_NEW[0]
    assert [m["content"] for m in h.agent.dialogue.history.turns] == ["What is the weather?", WEATHER]


PENGUINS = "People like penguins for many reasons, and one of them is that they're a very special type of bird."
TEMPLATED_BEES = "People like bees for many reasons, and one of them is that they're a very special type of insect."


def synthesized_while_streaming(h) -> list[tuple[str, bool]]:
    """Each piece the synthesizer is asked for, and whether the LLM was still streaming then."""
    asked, stream = [], h.synthesizer.stream

    def spy(request):
        asked.append((request.text, len(h.chat.requests) > h.chat.finished + h.chat.closed_early))
        return stream(request)

    h.synthesizer.stream = spy
    return asked


def test_an_opening_still_being_judged_is_synthesized_ahead_and_heard_once_admitted(tmp_path):
    reply = "People like bees for many reasons, and one of them is that bees make honey."
    h = make_harness(tmp_path, {1: "Why do people like bees?"}, reply)
    asked = synthesized_while_streaming(h)
    converse(h, Wait(0.5), Say(1, 1.0), Wait(6.0))
    assert asked[0] == ("People like bees for many reasons,", True), "synthesized while the LLM went on"
    assert [text for text, _ in asked] == ["People like bees for many reasons,",
                                           "and one of them is that bees make honey."], "and not again"
    assert h.turns[0]["agent_text"] == reply
    assert h.last_sound() - h.first_sound_after(1.5) == pytest.approx(15 * 0.25, abs=0.15), "all of it heard"


def test_an_opening_synthesized_ahead_that_turns_out_a_repeat_is_never_heard(tmp_path):
    honey = "Bees make honey and keep flowers blooming."
    h = make_harness(tmp_path, {1: "Why do people like penguins?", 2: "Why do people like bees?"},
                     PENGUINS, TEMPLATED_BEES, honey)
    asked = synthesized_while_streaming(h)
    converse(h, Wait(0.5), Say(1, 1.0), Wait(8.0), Say(2, 1.0), Wait(4.0))
    assert ("People like bees for many reasons,", True) in asked, "drafted"
    assert h.turns[1]["agent_text"] == honey
    start = h.first_sound_after(10.5)
    assert h.last_sound() - start == pytest.approx(7 * 0.25, abs=0.15), "only the second try was heard"


def test_a_reply_that_left_the_models_window_is_not_said_again(tmp_path):
    """The model no longer sees it, so it may well say it again; the guard still remembers it."""
    story = ("A long time ago a fisherman found a golden bottle on the beach, and inside it was a tiny map. "
             "He followed it across the dunes to an old well, where a turtle was waiting for him.")
    h = make_harness(tmp_path, {1: "What is the weather?", 2: "Tell me a story.", 3: "Anything else?"},
                     WEATHER, story, WEATHER, "Nothing more today, enjoy your afternoon.",
                     **{"llm.context_tokens": 128})
    converse(h, Wait(0.5), Say(1, 1.0), Wait(8.0), Say(2, 1.0), Wait(10.0), Say(3, 1.0), Wait(0.5))
    assert WEATHER not in [m["content"] for m in h.chat.requests[2]], "the first reply had left the window"
    assert [turn["agent_text"] for turn in h.turns] == [WEATHER, story, "Nothing more today, enjoy your afternoon."]
    assert list(h.agent.dialogue.replies) == [turn["agent_text"] for turn in h.turns]
