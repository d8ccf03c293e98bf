"""The live terminal view and its keys, drawn headless into a string."""
from __future__ import annotations

import asyncio
import io
import os
from types import SimpleNamespace

import pytest
from rich.console import Console
from rich.text import Text

from conftest import write_config
from conversation.app.keys import AgentKeys, KeyReader, keys_in, next_name
from conversation.app.live_view import LiveView

CLIP = "lhotse_ES2011a.Headset-0-40s-46s.wav"


def terminal() -> Console:
    return Console(file=io.StringIO(), force_terminal=True, width=100, color_system="truecolor")


def frame_text(view: LiveView, width: int = 100) -> str:
    """One frame of the view, as plain text."""
    console = Console(file=io.StringIO(), record=True, width=width)
    console.print(view.render())
    return console.export_text()


def in_order(seen, expected) -> bool:
    """`expected` appears in `seen` in this order (other states may come between)."""
    remaining = iter(seen)
    return all(state in remaining for state in expected)


# --- the real agent, in file mode --------------------------------------------

@pytest.mark.slow
@pytest.mark.timeout(120)
def test_a_file_mode_turn_shows_every_state_in_order(tmp_path, speech_dir):
    from conversation.config import load_config
    from conversation.session import SessionOptions, run_file
    from conversation.turn_log import read_turns

    config = load_config(write_config(tmp_path))
    screen = terminal()
    options = SessionOptions(log_path=str(tmp_path / "turns.jsonl"))
    with LiveView(console=screen, keys=(), stderr_log=str(tmp_path / "stderr.log")) as view:
        view.set_persona(config.default_persona, config.personas[config.default_persona].voice)
        asyncio.run(asyncio.wait_for(
            run_file(config, str(speech_dir / CLIP), str(tmp_path / "out.wav"), options, reporter=view), 100))

    states = list(view.history)
    # A reply prepared during the user's pause may be ready at the commit: then there was no
    # "thinking" to show (the fast layer checks that state with a slow LLM).
    first = read_turns(tmp_path / "turns.jsonl")[0]
    ready = first["tts_first_audio"] <= first["committed"]
    expected = ["hearing you", "speaking"] if ready else ["hearing you", "thinking", "speaking"]
    assert in_order(states, ["loading models", "listening", *expected, "listening"]), states
    # Once the person starts talking, the badge never claims "listening" before the reply.
    first_heard = states.index("hearing you")
    assert states[first_heard:states.index("speaking", first_heard) + 1] == expected

    final = frame_text(view)
    assert "you:" in final and "abi" in final.lower()  # "I'm Abigail ... You can call me Abi."
    assert "agent:" in final
    reply_words = final.split("agent:", 1)[1].split("last turn", 1)[0].split()
    assert len(reply_words) >= 2, final
    assert "voice-to-voice" in final
    assert any(word.isdigit() for word in final.split("voice-to-voice", 1)[1].split()[:1]), final
    assert config.default_persona in final

    drawn = Text.from_ansi(screen.file.getvalue()).plain  # what the terminal was sent, frame after frame
    assert "listening" in drawn and "speaking" in drawn and "voice-to-voice" in drawn
    assert "Traceback" not in drawn


# --- drawing -------------------------------------------------------------------

def test_a_long_conversation_keeps_the_view_small():
    view = LiveView(console=terminal(), transcript_lines=6)
    turn = SimpleNamespace(persona="assistant", voice="joe", user_text="")
    for n in range(500):
        turn.user_text = f"question number {n}"
        view.user(turn)
        view.agent(f"answer number {n}.")
        view.agent("word " * 2000)  # a very long reply
        view.turn_done({"turn": n, "voice_to_voice_ms": 700 + n, "interrupted": False})
    text = frame_text(view)
    assert "question number 499" in text and "question number 496" not in text
    assert len(text.splitlines()) < 40, text
    assert len(view.history) <= 256


def test_states_fold_repeats_and_loading_shows_each_model():
    clock = SimpleNamespace(now=0.0)
    view = LiveView(console=terminal(), clock=lambda: clock.now)
    view.state("loading models")
    view.load_started("speech recognition")
    view.load_started("language model")
    view.load_finished("language model")
    text = frame_text(view)
    assert "loading models" in text and "speech recognition" in text and "language model" in text
    view.load_finished("speech recognition")
    for name in ("listening", "listening", "hearing you", "thinking", "speaking", "speaking", "listening"):
        view.state(name)
    assert list(view.history) == ["loading models", "listening", "hearing you", "thinking", "speaking", "listening"]
    assert "speech recognition" not in frame_text(view)  # the list goes once the models are in


def test_errors_and_info_show_one_line_then_fade():
    clock = SimpleNamespace(now=0.0)
    view = LiveView(console=terminal(), clock=lambda: clock.now, info_seconds=4, error_seconds=8)
    view.error("turn 3 failed: RuntimeError: boom\nTraceback (most recent call last):\n  File ...")
    text = frame_text(view)
    assert "turn 3 failed: RuntimeError: boom" in text and "Traceback" not in text
    clock.now = 9.0
    assert "boom" not in frame_text(view)
    view.info("persona: pirate (voice joe)")
    assert "persona: pirate" in frame_text(view)
    clock.now = 14.0
    assert "persona: pirate" not in frame_text(view)


def test_header_follows_the_agent_and_help_toggles():
    view = LiveView(console=terminal())
    names = SimpleNamespace(persona="assistant", voice="joe")
    view.follow(lambda: (names.persona, names.voice))
    assert "assistant" in frame_text(view) and "joe" in frame_text(view)
    names.persona, names.voice = "pirate", "amy"
    text = frame_text(view)
    assert "pirate" in text and "amy" in text
    assert "next persona" in text and "hide this help" not in text
    view.toggle_help()
    assert "hide this help" in frame_text(view)


def test_latency_breakdown_adds_up_to_the_bar():
    from conversation.app.live_view import BAR_WIDTH, latency_bar

    record = {"speech_end": 1.0, "endpoint": 1.2, "stt_done": 1.3, "llm_first_token": 1.46,
              "first_chunk_ready": 1.66, "tts_first_audio": 1.8, "committed": 1.7, "playback_start": 1.82,
              "voice_to_voice_ms": 820, "interrupted": False}
    view = LiveView(console=terminal())
    view.turn_done(record)
    text = frame_text(view)
    assert "voice-to-voice 820 ms" in text
    for label in ("endpoint 200", "stt 100", "llm 160", "chunk 200", "tts 140", "out 20"):
        assert label in text, text
    assert len(latency_bar([(200, "red"), (100, "blue"), (1, "green")]).plain) == BAR_WIDTH


def test_stderr_of_c_libraries_goes_to_the_log_while_the_view_runs(tmp_path):
    log = tmp_path / "agent.log"
    with LiveView(console=terminal(), stderr_log=str(log)):
        os.write(2, b"ALSA lib pcm.c:2666:(snd_pcm_open_noupdate) Unknown PCM\n")
    assert "ALSA lib" in log.read_text()
    os.write(2, b"")  # fd 2 is usable again


# --- keys ----------------------------------------------------------------------

def test_keys_in_drops_escape_sequences():
    assert keys_in(b"pv") == ["p", "v"]
    assert keys_in(b"q\x1b[A") == ["q"]
    assert next_name(["a", "b", "c"], "c") == "a" and next_name(["a", "b"], "zz") == "a"


def test_key_reader_on_a_pseudo_terminal_calls_back_and_restores_the_mode():
    pty = pytest.importorskip("pty")
    import termios

    leader, follower = pty.openpty()
    before = termios.tcgetattr(follower)
    pressed: list[str] = []

    async def main():
        stream = os.fdopen(os.dup(follower), "r")
        got_help = asyncio.Event()
        keys = {"p": lambda: pressed.append("p"), "v": lambda: pressed.append("v"), "?": got_help.set}
        with KeyReader(keys, stream) as reader:
            assert reader.active
            assert not termios.tcgetattr(follower)[3] & termios.ICANON  # cbreak: one key at a time
            os.write(leader, b"pxV?")
            await asyncio.wait_for(got_help.wait(), 5)
        stream.close()

    try:
        asyncio.run(main())
        assert pressed == ["p", "v"]
        assert termios.tcgetattr(follower) == before
    finally:
        os.close(leader)
        os.close(follower)


def test_key_reader_off_a_terminal_does_nothing():
    async def main():
        with KeyReader({"q": lambda: None}, io.StringIO("q")) as reader:
            assert not reader.active

    asyncio.run(main())


def test_agent_keys_cycle_personas_and_voices_and_load_the_voice():
    loaded: list[str] = []
    quit_calls: list[bool] = []

    class FakeAgent:
        def __init__(self):
            self.config = SimpleNamespace(personas={"assistant": None, "pirate": None},
                                          voices={"joe": None, "amy": None, "xtts_clone": None})
            self.persona_name, self.voice_name = "assistant", "joe"
            self.reporter = SimpleNamespace(error=lambda message: None, info=lambda message: None)

        async def prepare(self):
            pass

        async def load_voice(self, name):
            await asyncio.sleep(0.01)
            loaded.append(name)

        def switch_persona(self, name):
            self.persona_name, self.voice_name = name, "amy"

        def switch_voice(self, name):
            self.voice_name = name

    agent = FakeAgent()

    async def main():
        async with AgentKeys(agent, quit=lambda: quit_calls.append(True)) as keys:
            keys.reader.press("p")
            assert agent.persona_name == "pirate"
            keys.reader.press("v")
            keys.reader.press("v")
            assert agent.voice_name == "joe"  # amy -> xtts_clone -> joe
            keys.reader.press("q")
            await asyncio.sleep(0.2)

    asyncio.run(main())
    assert loaded == ["amy", "xtts_clone", "joe"]
    assert quit_calls == [True]
