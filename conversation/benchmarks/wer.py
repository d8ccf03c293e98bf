"""Word error rate of the agent's transcripts beside faster-whisper's own `transcribe()`.

    python -m conversation.benchmarks.wer [CLIP|FOLDER ...] [--out FILE.json] [--config config.yaml]
    python main.py --benchmark wer

For every clip with speech in it, two transcripts of the same audio:

- the agent's: the clip replayed through the whole agent in file mode, as
  the v2v benchmark does (replay.py), so the endpointer cuts the utterances
  and the agent's own transcriber reads each; its words are those of every
  turn it logged, in order;
- faster-whisper's: `WhisperModel.transcribe()` on the whole clip with the
  same model, compute type, language and beam size (the config's `stt`),
  everything else left at faster-whisper's defaults.

Each is scored against the clip's reference transcript (MANIFEST.tsv; for
an excerpt, EXCERPT_REFERENCES) where there is one; where there is none, the
agent's transcript is scored against transcribe()'s text. A clip passes when
the agent's WER is within TOLERANCE (1 point) of transcribe()'s.

The multilingual clip reads a licence in English, then in German. The
bundled model (tiny.en) knows English only, and the agent refuses any other
language with it (stt.language), so neither can get the German half right:
transcribe() writes nothing for it, the agent English-sounding nonsense,
and scoring either would measure how a model fails at a language it was
never taught. Only the English half is measured:
both transcripts are of the clip's first 30 s, the English reading and a
second of the silence before the German (EXCERPTS). (Replayed whole, the
German follows too soon for the reply to the English to be heard, so the
agent joins both into one turn.)

Silero's clip has no reference in the manifest, and transcribe() is no
yardstick for it: it drops a word at its own window's edge, and the clip
ends in a word half said, which each model guesses differently. It is
measured up to its last whole word, against a transcript two models agree on
(EXCERPT_REFERENCES).
"""
from __future__ import annotations

import json
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Iterable, Sequence

from .measure import speech_mask
from .replay import BenchmarkError, find_clips, replay_clip
from .stats import word_error_rate
from .v2v import manifest_transcripts, whisper_transcripts

TOLERANCE = 0.01  # one point of WER
# Clips of which only a part is measured: name -> (start s, end s, why).
EXCERPTS = {"faster-whisper_multilingual.mp3": (0.0, 30.0, "English only: the English reading ends at 29.1 s, "
                                                             "the German starts at 31.0 s"),
            "silero-vad_test.wav": (0.0, 59.8, "whole words only: the clip cuts off the speaker's next word "
                                               "after \"questions\", 0.1 s after it begins at 59.9 s")}
# What an excerpt says, where known (the manifest has no reference for these clips, or one of the whole clip).
EXCERPT_REFERENCES = {
    # The English half reads the MIT licence's grant and its condition, leaving out the parenthesis (the
    # "Software"): no transcript of it has those words, by tiny.en here or by the multilingual tiny in
    # faster-whisper's own tests, while those hear the rest word for word ("... and this permission notice,
    # shall be included ...").
    "faster-whisper_multilingual.mp3": (
        "Permission is hereby granted, free of charge, to any person obtaining a copy of this software and "
        "associated documentation files, to deal in the Software without restriction, including without "
        "limitation the rights to use, copy, modify, merge, publish, distribute, sublicense, and/or sell copies "
        "of the Software, and to permit persons to whom the Software is furnished to do so, subject to the "
        "following conditions: The above copyright notice and this permission notice shall be included in all "
        "copies or substantial portions of the Software."),
    # A talk, begun mid-sentence. Word for word what Whisper base (beam 5) hears in the whole clip, and what
    # tiny.en's transcribe() hears but for one word: "And this spills over", whose "And" it drops at its
    # first window's end and hears in the span begun at 9.3 s, as base does in both.
    "silero-vad_test.wav": (
        "and says, how do I get to Dublin? And the answer that comes back is, well, I wouldn't start from here, "
        "sonny. That is to say, much of political philosophy develops theories that take no account of where we "
        "actually are and how the theories that people argue about in the journals and in the literature "
        "actually could be implemented in the world, if at all. And this spills over into normative arguments "
        "made by other scholars, Thomas Piketty in his book, Capital in the 21st century, argues for a 4% global "
        "wealth tax. Well, good luck with that. Who's going to implement a 4% global wealth tax? So when I think "
        "about normative questions,"),
}


@dataclass
class ClipWer:
    clip: str
    scored_against: str  # "reference" or "transcribe()"
    pipeline_wer: float | None
    whisper_wer: float | None  # transcribe()'s own WER against the reference; 0 when it is the yardstick
    turns: int
    pipeline: str
    whisper: str
    reference: str | None = None
    excerpt: str | None = None
    pipeline_vs_whisper: float | None = None  # always given, as a hint where the two part

    @property
    def difference(self) -> float | None:
        """The agent's WER minus transcribe()'s, in points."""
        if self.pipeline_wer is None or self.whisper_wer is None:
            return None
        return round((self.pipeline_wer - self.whisper_wer) * 100, 2)

    @property
    def passed(self) -> bool:
        return self.difference is not None and self.difference <= TOLERANCE * 100 + 1e-9


def measure(config, clips: Path | str | Iterable[Path | str] | None, out_dir: Path, console=None) -> list[ClipWer]:
    """Replay each clip with speech through the agent and transcribe it whole; score both."""
    from audio_io.files import read_audio, write_wav

    paths = find_clips(clips)
    out_dir.mkdir(parents=True, exist_ok=True)
    measured: list[tuple[Path, Path, str | None]] = []  # (clip, the audio both hear, excerpt)
    for clip in paths:
        audio, rate = read_audio(clip)
        excerpt = EXCERPTS.get(clip.name)
        if excerpt is not None:
            start, end, why = excerpt
            audio = audio[int(start * rate):int(end * rate)]
            heard = out_dir / f"{clip.stem}.excerpt.wav"
            write_wav(heard, audio, rate)
        else:
            heard = clip
        if not speech_mask(audio, rate).any():
            _say(console, f"{clip.name}: no speech, skipped")
            continue
        measured.append((clip, heard, excerpt and excerpt[2]))

    references = manifest_transcripts(paths[0].parent) if paths else {}
    results = []
    for clip, heard, excerpt in measured:
        _say(console, f"replaying {heard.name} through the agent in real time ...")
        replay = replay_clip(config, heard, out_dir, 1)
        results.append((clip, heard, excerpt, replay))
    whisper = whisper_transcripts([heard for _, heard, _ in measured], config.stt)

    scored = []
    for clip, heard, excerpt, replay in results:
        pipeline = " ".join(turn["user_text"] for turn in replay.turns if turn.get("user_text"))
        reference = EXCERPT_REFERENCES.get(clip.name) if excerpt else references.get(clip.name)
        versus = word_error_rate(whisper[heard], pipeline)
        if reference is not None:
            entry = ClipWer(clip.name, "reference", word_error_rate(reference, pipeline),
                            word_error_rate(reference, whisper[heard]), len(replay.turns), pipeline, whisper[heard],
                            reference, excerpt, versus)
        else:
            entry = ClipWer(clip.name, "transcribe()", versus, 0.0 if versus is not None else None,
                            len(replay.turns), pipeline, whisper[heard], None, excerpt, versus)
        scored.append(entry)
    return scored


def print_table(results: Sequence[ClipWer], console) -> None:
    from rich.table import Table

    table = Table(title="WER: the agent (VAD utterances, its transcriber) vs faster-whisper's transcribe() "
                        "on the whole clip", caption=f"PASS: the agent within {TOLERANCE * 100:.0f} point of "
                                                     "transcribe(); scored against the reference where there is one")
    table.add_column("clip", overflow="fold", min_width=20)
    for column in ("turns", "vs", "agent", "transcribe()", "diff (pts)", ""):
        table.add_column(column, justify="right", no_wrap=True)
    for entry in results:
        table.add_row(Path(entry.clip).stem + (" (excerpt)" if entry.excerpt else ""), str(entry.turns),
                      entry.scored_against, _pct(entry.pipeline_wer), _pct(entry.whisper_wer),
                      "-" if entry.difference is None else f"{entry.difference:+.1f}",
                      "PASS" if entry.passed else "FAIL")
    console.print(table)


def to_json(results: Sequence[ClipWer], config_path: str | Path) -> dict:
    return {"config": str(config_path), "tolerance_points": TOLERANCE * 100,
            "passed": sum(entry.passed for entry in results), "failed": sum(not entry.passed for entry in results),
            "clips": [{**asdict(entry), "difference_points": entry.difference, "passed": entry.passed}
                      for entry in results]}


def run(config_path: str | Path, clips, out: str | Path, console=None) -> dict:
    """Measure, print the table and write `out` (JSON); the replays' files go to the folder beside it."""
    from rich.console import Console

    from ..config import load_config

    console = console or Console(width=None if sys.stdout.isatty() else 110)  # a log keeps whole clip names
    out = Path(out)
    results = measure(load_config(config_path), clips, out.with_suffix(""), console)
    print_table(results, console)
    result = to_json(results, config_path)
    out.write_text(json.dumps(result, indent=2, ensure_ascii=False))
    console.print(f"results in {out}")
    return result


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m conversation.benchmarks.wer [CLIP|FOLDER ...] [--out FILE.json]`; exit 1 if a clip fails."""
    import argparse

    parser = argparse.ArgumentParser(prog="conversation.benchmarks.wer",
                                     description="WER of the agent's transcripts vs faster-whisper's transcribe()")
    parser.add_argument("clips", nargs="*", help="clips or one folder (default: the shared speech clips)")
    parser.add_argument("--config", default="config.yaml")
    parser.add_argument("--out", default="bench/wer.json", help="results file (default: bench/wer.json)")
    args = parser.parse_args(argv)
    from ..config import ConfigError
    from ..log_setup import setup_logging

    clips = (args.clips[0] if len(args.clips) == 1 else args.clips) or None
    try:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        setup_logging(str(Path(args.out).with_suffix(".log")))
        result = run(args.config, clips, args.out)
    except (BenchmarkError, ConfigError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0 if not result["failed"] else 1


def _say(console, line: str) -> None:
    if console is not None:
        console.print(line)


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:.1f}%"


if __name__ == "__main__":
    sys.exit(main())
