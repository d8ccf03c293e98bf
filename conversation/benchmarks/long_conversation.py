"""A long spoken conversation in file mode: is anything lost, repeated, slower or bigger by the end?

    python -m conversation.benchmarks.long_conversation [--utterances 40] [--gap-s 8]
        [--simulate-echo 80:-10] [--config config.yaml] [--out bench/long]

One recording is built: distinct spoken questions (Piper's voice, cached in
the output folder) with the shared human clips spread among them, each
followed by a gap for the reply. It is replayed through the whole agent in
real time while the process's memory is sampled every second. The report:

* lost utterances: no turn overlapping an utterance holds half of its words;
* replies (as far as they were said before any cut) that are near-duplicates of an earlier
  one (the repeat guard's test: 70% of the content words that are not the question's), or
  recite the system prompt;
* voice-to-voice latency per utterance, from the audio (the input's speech
  end to the output's first sound), first fifth against last fifth;
* RSS over time, first fifth against last fifth;

as JSON and two plots (rss.png, latency.png).
"""
from __future__ import annotations

import argparse
import asyncio
import hashlib
import itertools
import json
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

from audio_io.files import read_audio
from audio_io.rates import SAMPLE_RATE as RATE
from audio_io.room import parse_echo_spec

from ..config import ConfigError, load_config
from ..latency import STAGES, stage_durations_ms
from ..repeats import recites, repeats_earlier
from ..session import SessionOptions, run_file
from ..turn_log import read_turns
from .dialogue import rss_mb
from .measure import first_audible
from .replay import DEFAULT_CLIPS, StateClock
from .scenarios import silent_after
from .stats import normalize_words, percentile
from .v2v import manifest_transcripts

HUMAN_CLIPS = ["coqui-ai-TTS_LJ001-0002.wav", "faster-whisper_jfk.flac", "lhotse_LJ002-0020.wav",
               "lhotse_ES2011a.Headset-0-40s-46s.wav", "lhotse_LJ002-0035.wav"]
HUMAN_EVERY = 7  # one human clip among this many utterances, each clip once
FOUND_SHARE = 0.5  # an utterance is heard if the turns over it hold this share of its words
TOPICS = ["the moon", "penguins", "volcanoes", "coffee", "the ocean", "bees", "rainbows", "trains", "chess",
          "the piano", "tomatoes", "glaciers", "owls", "the desert", "bread", "lightning", "whales", "tea",
          "bicycles", "the rainforest", "comets", "cheese", "sharks", "kites", "mushrooms", "the violin",
          "lighthouses", "honey", "dolphins", "snow", "castles", "tigers", "the wind", "pottery",
          "submarines", "tulips", "octopuses", "the sun"]
TEMPLATES = ["Tell me one thing about {}.", "Why do people like {}?", "What is special about {}?",
             "Give me a fun fact about {}.", "How would you describe {} to a child?",
             "What should everyone know about {}?"]


@dataclass
class Utterance:
    text: str  # what was said (the reference)
    audio: np.ndarray  # 16 kHz
    start: float = 0.0  # where it was placed in the recording
    end: float = 0.0  # its last speech, in the recording


def questions(count: int) -> list[str]:
    """`count` distinct questions, topics varying fastest, so neighbours never share a topic."""
    pairs = itertools.product(TEMPLATES, TOPICS)
    return [template.format(topic) for template, topic in itertools.islice(pairs, count)]


def spoken(texts: list[str], cache: Path) -> list[np.ndarray]:
    """Each text said by the bundled Piper voice, at 16 kHz; cached by text."""
    import soxr

    from tts.base import SpeechRequest
    from tts.piper import PiperSynthesizer, PiperVoiceSettings

    cache.mkdir(parents=True, exist_ok=True)
    synthesizer, clips = None, []
    for text in texts:
        path = cache / f"{hashlib.sha1(text.encode()).hexdigest()[:16]}.wav"
        if not path.exists():
            synthesizer = synthesizer or PiperSynthesizer()
            audio = np.concatenate(list(synthesizer.stream(SpeechRequest(text, PiperVoiceSettings(volume=0.5)))))
            sf.write(str(path), soxr.resample(audio, synthesizer.sample_rate, RATE), RATE, subtype="PCM_16")
        clips.append(read_audio(path, RATE)[0])
    return clips


def script(count: int, cache: Path, clips_dir: Path = DEFAULT_CLIPS) -> list[Utterance]:
    references = manifest_transcripts(clips_dir)
    humans = [Utterance(references[name], read_audio(clips_dir / name, RATE)[0])
              for name in HUMAN_CLIPS if name in references and (clips_dir / name).is_file()]
    asked = questions(count)
    said = [Utterance(text, audio) for text, audio in zip(asked, spoken(asked, cache / "questions"))]
    for slot, human in zip(range(HUMAN_EVERY // 2, count, HUMAN_EVERY), humans):
        said[slot] = human
    return said


def place(utterances: list[Utterance], gap_s: float, path: Path, lead_s: float = 1.5) -> None:
    """Write them one after another into one recording, `gap_s` after each one's end."""
    cursor = round(lead_s * RATE)  # in samples: seconds would round an utterance past the recording's end
    starts = []
    for utterance in utterances:
        starts.append(cursor)
        utterance.start = cursor / RATE
        utterance.end = (cursor + _last_sound(utterance.audio)) / RATE
        cursor += len(utterance.audio) + round(gap_s * RATE)
    mix = np.zeros(cursor, dtype=np.float32)
    for utterance, start in zip(utterances, starts):
        mix[start:start + len(utterance.audio)] += utterance.audio
    sf.write(str(path), mix, RATE, subtype="PCM_16")


def _last_sound(audio: np.ndarray, floor_dbfs: float = -40.0) -> int:
    loud = np.flatnonzero(np.abs(audio) > 10 ** (floor_dbfs / 20))
    return int(loud[-1]) + 1 if loud.size else len(audio)


class MemorySampler:
    """RSS every `period_s` on its own thread, as (monotonic time, MB), for the `with` block's length."""

    def __init__(self, period_s: float = 1.0):
        self.samples: list[tuple[float, float]] = []
        self._period = period_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)

    def __enter__(self) -> MemorySampler:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.is_set():
            self.samples.append((time.monotonic(), round(rss_mb(), 1)))
            self._stop.wait(self._period)


def replay(config, recording: Path, out: Path, echo) -> tuple[list[dict], np.ndarray, int, list]:
    """The turns, the speaker's output and RSS samples as (seconds since the agent began listening, MB)."""
    log = out / "turns.jsonl"
    log.unlink(missing_ok=True)
    options = SessionOptions(log_path=str(log), simulate_echo=echo)
    states = StateClock()
    with MemorySampler() as memory:
        asyncio.run(run_file(config, str(recording), str(out / "out.wav"), options, states))
    output, rate = sf.read(str(out / "out.wav"), dtype="float32")
    listening = states.first("listening") or memory.samples[0][0]
    return read_turns(log), output, rate, [(round(t - listening, 1), mb) for t, mb in memory.samples]


def heard(utterance: Utterance, turns: list[dict]) -> float:
    """The share of the utterance's words in the transcripts of the turns over it."""
    over = [t for t in turns if t["speech_start"] is not None and t["speech_start"] < utterance.end + 0.5
            and t["speech_end"] > utterance.start - 0.5]
    transcribed = set(normalize_words(" ".join(t["user_text"] for t in over)))
    wanted = normalize_words(utterance.text)
    return sum(w in transcribed for w in wanted) / len(wanted) if wanted else 1.0


def voice_to_voice(utterances: list[Utterance], output: np.ndarray, rate: int) -> list[float | None]:
    """From each utterance's last speech to the agent's first sound after it, before the next one.

    An earlier reply still sounding at the utterance's end is not this one's answer: the answer
    is the first sound after the speaker has fallen silent.
    """
    latencies = []
    for utterance, following in zip(utterances, utterances[1:] + [None]):
        quiet = silent_after(output, rate, utterance.end)
        sound = None if quiet is None else first_audible(output, rate, utterance.end + quiet)
        too_late = following is not None and (sound is None or sound > following.start)
        latencies.append(None if sound is None or too_late else round((sound - utterance.end) * 1000))
    return latencies


def fifths(values: list, first: bool) -> list:
    part = max(1, len(values) // 5)
    return values[:part] if first else values[-part:]


def analyse(utterances: list[Utterance], turns: list[dict], output: np.ndarray, rate: int,
            memory: list[tuple[float, float]], system_prompts: list[str]) -> dict:
    shares = [heard(u, turns) for u in utterances]
    lost = [{"said": u.text, "heard_share": round(s, 2)} for u, s in zip(utterances, shares) if s < FOUND_SHARE]
    answered = [t for t in turns if t["heard_text"] and not t.get("command")]
    replies = [t["heard_text"] for t in answered]  # what was said: a cut reply up to the cut
    duplicates = [t["heard_text"] for i, t in enumerate(answered)
                  if repeats_earlier(t["heard_text"], replies[:i], t["user_text"])]
    recited = [t["agent_text"] for t in turns if any(recites(t["agent_text"], prompt) for prompt in system_prompts)]
    latency = voice_to_voice(utterances, output, rate)
    measured = [v for v in latency if v is not None]
    rss = [mb for t, mb in memory if t >= 0]  # from the first word on: model loading is not the conversation
    return {
        "utterances": len(utterances), "turns": len(turns), "lost": lost, "duplicates": duplicates,
        "recited": recited, "interrupted_replies": sum(bool(t["interrupted"]) for t in turns),
        "overheard_turns": sum(bool(t.get("overheard")) for t in turns),
        "v2v_ms": {"p50": _ms(percentile(measured, 50)), "p90": _ms(percentile(measured, 90)),
                   "first_fifth_p90": _ms(percentile(fifths(measured, True), 90)),
                   "last_fifth_p90": _ms(percentile(fifths(measured, False), 90)),
                   "no_reply_before_next": sum(v is None for v in latency)},
        "rss_mb": {"first_fifth": round(float(np.mean(fifths(rss, True))), 1) if rss else None,
                   "last_fifth": round(float(np.mean(fifths(rss, False))), 1) if rss else None,
                   "peak": max(rss, default=None)},
        "stages_p50_ms": stage_medians(turns),
        "latency_by_utterance": latency, "rss_samples": memory,
    }


def stage_medians(turns: list[dict]) -> dict[str, float | None]:
    """Each stage's median over the turns that were answered, from the turn log (the agent's clock)."""
    answered = [stage_durations_ms(t) for t in turns if t["playback_start"] is not None and not t.get("command")]
    return {stage.name: _ms(percentile([d[stage.name] for d in answered], 50)) for stage in STAGES}


def _ms(value: float | None) -> int | None:
    return None if value is None else round(value)


def plot(result: dict, out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    seconds, mb = zip(*result["rss_samples"]) if result["rss_samples"] else ((), ())
    figure, axis = plt.subplots(figsize=(8, 3))
    axis.plot(seconds, mb)
    axis.axvline(0, color="grey", linewidth=0.5)
    axis.set(xlabel="seconds since the agent began listening (before: loading)", ylabel="RSS (MB)",
             title="Memory over the conversation")
    figure.tight_layout()
    figure.savefig(out / "rss.png", dpi=100)
    latency = result["latency_by_utterance"]
    figure, axis = plt.subplots(figsize=(8, 3))
    axis.plot([i + 1 for i, v in enumerate(latency) if v is not None], [v for v in latency if v is not None], ".")
    axis.set(xlabel="utterance", ylabel="voice-to-voice (ms)", title="Latency over the conversation")
    figure.tight_layout()
    figure.savefig(out / "latency.png", dpi=100)
    plt.close("all")


def summary_lines(result: dict) -> list[str]:
    v2v, rss = result["v2v_ms"], result["rss_mb"]
    return [
        f"utterances {result['utterances']}, turns {result['turns']}, lost {len(result['lost'])}, "
        f"overheard {result['overheard_turns']}, interrupted replies {result['interrupted_replies']}",
        f"near-duplicate replies {len(result['duplicates'])}, system-prompt recitals {len(result['recited'])}",
        f"voice-to-voice p50 {v2v['p50']} ms, p90 {v2v['p90']} ms; p90 first fifth {v2v['first_fifth_p90']} ms, "
        f"last fifth {v2v['last_fifth_p90']} ms; no reply before the next utterance: {v2v['no_reply_before_next']}",
        f"RSS first fifth {rss['first_fifth']} MB, last fifth {rss['last_fifth']} MB, peak {rss['peak']} MB",
        "stage medians (turn log): " + ", ".join(f"{name} {ms}" for name, ms in result["stages_p50_ms"].items()),
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="A long spoken conversation through the whole agent.")
    parser.add_argument("--utterances", type=int, default=40)
    parser.add_argument("--gap-s", type=float, default=8.0, help="silence after each utterance, for the reply")
    parser.add_argument("--simulate-echo", metavar="DELAY_MS:GAIN_DB", help="an open speaker, e.g. 80:-10")
    parser.add_argument("--config", default="config.yaml")
    parser.add_argument("--out", type=Path, default=Path("bench/long"))
    args = parser.parse_args(argv)
    try:
        config = load_config(args.config)
        echo = parse_echo_spec(args.simulate_echo) if args.simulate_echo else None
    except (ConfigError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    utterances = script(args.utterances, args.out)
    recording = args.out / "in.wav"
    place(utterances, args.gap_s, recording)
    print(f"{len(utterances)} utterances, {len(sf.read(str(recording))[0]) / RATE / 60:.1f} min of input",
          flush=True)
    turns, output, rate, memory = replay(config, recording, args.out, echo)
    prompts = [persona.system_prompt for persona in config.personas.values()]
    result = analyse(utterances, turns, output, rate, memory, prompts)
    result["settings"] = {"utterances": args.utterances, "gap_s": args.gap_s, "simulate_echo": args.simulate_echo}
    (args.out / "long_conversation.json").write_text(json.dumps(result, indent=2))
    plot(result, args.out)
    print("\n".join(summary_lines(result)))
    for miss in result["lost"]:
        print(f"lost: {miss['said']!r} (heard {miss['heard_share']:.0%} of its words)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
