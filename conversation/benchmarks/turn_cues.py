"""The end-of-turn cues at every pause in every clip: which pauses ended a turn, and what each cue said.

    python -m conversation.benchmarks.turn_cues [CLIP ...] [--out FILE.json]

Each clip goes through the VAD alone. At every pause (`vad.pause_ms` of
silence) the utterance so far is transcribed and judged by each cue: the
words (`sounds_complete`) and the voice (Smart Turn's probability). A pause
is a turn's end when no speech follows within the hang-over: the turn the
speaker really took; otherwise the row gives the silence the speaker went on
after. An end-of-turn rule splits a turn wherever it says "over" at a pause
whose silence is longer than the rule waits; conversation/end_of_turn.py's
was chosen on these rows. (The bundled LLM's probability of ending the
user's message there was tried too: below 0.001 at every pause, ends included.)
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from audio_io.files import read_audio
from audio_io.rates import SAMPLE_RATE
from audio_io.smart_turn import SmartTurn
from audio_io.vad import Endpointer, SpeechEnded, SpeechPaused, SpeechResumed
from stt.backends import make_transcriber

from ..config import load_config
from ..end_of_turn import sounds_complete
from .end_of_turn import NO_SPEECH
from .replay import find_clips


def pauses(config, audio: np.ndarray) -> list[dict]:
    """Every pause in the clip: its audio so far, and whether the turn ended there."""
    endpointer = Endpointer(config.vad)
    frame = endpointer.frame_len
    found, events = [], []
    for i in range(0, len(audio) - frame + 1, frame):
        events += endpointer.process(audio[i:i + frame], i / SAMPLE_RATE)
    events += endpointer.flush(len(audio) / SAMPLE_RATE)
    for event in events:
        if isinstance(event, SpeechPaused):
            found.append({"at_s": round(event.end, 2), "audio": event.audio, "end": None,
                          "longest_pause_s": round(event.longest_pause, 2)})
        elif isinstance(event, SpeechResumed) and found and found[-1]["end"] is None:
            found[-1]["end"] = False
            found[-1]["silence_s"] = round(event.at - found[-1]["at_s"], 2)
        elif isinstance(event, SpeechEnded) and found and found[-1]["end"] is None:
            found[-1]["end"] = True
    return [p for p in found if p["end"] is not None]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("clips", nargs="*")
    parser.add_argument("--config", default="config.yaml")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    config = load_config(args.config)
    transcriber = make_transcriber(config.stt)
    transcriber.load()
    smart_turn = SmartTurn()
    smart_turn.load()
    rows = []
    clips = [clip for given in (args.clips or [None]) for clip in find_clips(given)]
    for clip in clips:
        if clip.name.startswith(NO_SPEECH):
            continue
        audio, _ = read_audio(clip, SAMPLE_RATE)
        for pause in pauses(config, audio):
            heard = pause.pop("audio")
            text = transcriber.transcribe(heard).text
            row = {"clip": clip.name, **pause, "text": text, "words": sounds_complete(text),
                   "voice": round(smart_turn.probability(heard), 3)}
            rows.append(row)
            print(json.dumps(row), flush=True)
    if args.out:
        args.out.write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
