"""What the conversation benchmark's user says: the lines, their gaps, the persona switches and the cut-in.

Piper says the scripted lines (cached by text, as in long_conversation); a few
human clips from the shared folder stand among them. The lines go one after
another into one recording, each followed by its own gap for the reply. The
cut-in is not in the recording: it is mixed into the mic while the replay runs,
timed from the agent's own output (scenarios.CutIn), so it lands the same way
into the reply however long the agent took to begin it.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from audio_io.files import read_audio
from audio_io.rates import SAMPLE_RATE as RATE

from .long_conversation import Utterance, place, questions, spoken
from .replay import BenchmarkError
from .scenarios import CutIn, speech_onset
from .v2v import manifest_transcripts

GAP_S = 8.0  # after an ordinary line: the reply and a breath
LEAD_S = 1.5  # before the first line: the agent's echo probe plays


@dataclass(frozen=True)
class Line:
    said: str  # the words Piper says, or a human clip's file name
    gap_s: float = GAP_S  # silence after it, for the reply
    human: bool = False


@dataclass(frozen=True)
class Script:
    lines: tuple[Line, ...]
    cut_line: int  # the line whose reply the user cuts into
    cut_in: str  # what they say over it; no comma: a short word and a pause only pause the reply, like a cough
    cut_at_s: float  # this far into the reply


# Long enough for the cut reply, the interruption and the answer to it.
CUT_GAP_S = 20.0

# Sixteen utterances: a persona switch and back, a cut-in, then a long stretch of questions, so
# the last prompts carry a long history.
FULL = Script(
    lines=(
        Line("What is the capital of France?"),
        Line("faster-whisper_jfk.flac", human=True),
        Line("Switch to the storyteller.", 5.0),
        Line("Tell me a story about a lighthouse keeper.", CUT_GAP_S),
        Line("Switch to the assistant.", 5.0),
        *(Line(question) for question in questions(5)),
        Line("coqui-ai-TTS_LJ001-0002.wav", human=True),
        *(Line(question) for question in questions(9)[5:]),
    ),
    cut_line=3, cut_in="Stop and tell me about a cat instead.", cut_at_s=1.5)

# The smallest conversation with all three: a question, a persona switch, a cut-in.
SHORT = Script(
    lines=(Line("What is the capital of France?", 5.0), Line("Switch to the storyteller.", 4.0),
           Line("Tell me a story about a fox.", 9.0)),
    cut_line=2, cut_in="Stop and make it a short one.", cut_at_s=0.4)  # early: the story may be short


@dataclass
class Conversation:
    """The recording built from a script, and what is needed to cut in and to place the cut-in after."""

    lines: list[Utterance]  # as placed in the recording
    recording: Path
    interruption: Utterance  # start 0, end at its last sound: shifted once the replay placed it
    interruption_onset_s: float  # where its speech begins in its own audio
    cut_after_s: float  # the cut line's end: the reply to cut is the first sound after it
    cut_at_s: float

    def cut_in(self) -> CutIn:
        """A fresh cut-in for one replay (it keeps the state of that replay)."""
        return CutIn(self.interruption.audio, self.interruption_onset_s, self.cut_at_s, RATE,
                     listen_after_s=self.cut_after_s)

    def placed_interruption(self, cut_in: CutIn) -> Utterance | None:
        """The interruption where the replay mixed it in; None if the reply to cut never began."""
        if cut_in.onset is None:
            return None
        shift = cut_in.onset - self.interruption_onset_s
        return replace(self.interruption, start=shift, end=shift + self.interruption.end)


def build(script: Script, out: Path, clips_dir: Path) -> Conversation:
    """Speak the script's lines (cached under `out`), place them into out/in.wav, prepare the cut-in."""
    out.mkdir(parents=True, exist_ok=True)
    texts = [line.said for line in script.lines if not line.human] + [script.cut_in]
    voiced = dict(zip(texts, spoken(texts, out / "utterances")))
    references = manifest_transcripts(clips_dir) if any(line.human for line in script.lines) else {}
    lines = []
    for line in script.lines:
        text, audio = _human(line.said, clips_dir, references) if line.human else (line.said, voiced[line.said])
        # The gap goes into the line itself, as trailing silence: place() finds the speech's end all the same.
        lines.append(Utterance(text, np.concatenate([audio, np.zeros(int(line.gap_s * RATE), np.float32)])))
    recording = out / "in.wav"
    place(lines, 0.0, recording, lead_s=LEAD_S)
    interruption = Utterance(script.cut_in, voiced[script.cut_in])
    place([interruption], 0.0, out / "cut_in.wav", lead_s=0.0)  # its end, and the interruption as a file
    return Conversation(lines, recording, interruption, speech_onset(interruption.audio),
                        lines[script.cut_line].end, script.cut_at_s)


def _human(name: str, clips_dir: Path, references: dict[str, str]) -> tuple[str, np.ndarray]:
    path = clips_dir / name
    if not path.is_file() or name not in references:
        raise BenchmarkError(f"human clip {name} (with its transcript in MANIFEST.tsv) not found in {clips_dir}")
    return references[name], read_audio(path, RATE)[0]
