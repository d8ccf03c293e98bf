"""A real-time, fully local speech-to-speech voice agent.

    python main.py                         talk through the mic and speaker
    python main.py --input IN --output OUT.wav --log turns.jsonl
    python main.py --text                  type instead of talking
    python main.py report turns.jsonl      latency summary and chart
    python main.py voices add NAME CLIP.wav   clone an XTTS voice
"""
from __future__ import annotations

import argparse
import sys


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="main.py", description="A real-time, fully local voice agent.")
    parser.add_argument("--config", default="config.yaml", help="settings file (default: config.yaml)")
    parser.add_argument("--persona", help="persona to talk to (default: default_persona in the config)")
    parser.add_argument("--input", metavar="IN", help="replay this recording (wav, flac, mp3) as the microphone")
    parser.add_argument("--output", metavar="OUT.wav", help="with --input: write the agent's speaker signal here, "
                        "aligned sample for sample with IN")
    parser.add_argument("--log", metavar="TURNS.jsonl", help="turn log (overrides log.turns in the config)")
    parser.add_argument("--llm", metavar="URL|FILE.gguf",
                        help="answer with an OpenAI-compatible server (e.g. http://localhost:11434/v1) "
                             "or a local .gguf model, instead of llm.* in the config")
    parser.add_argument("--model", metavar="NAME", help="the model name to ask the server for (llm.model)")
    parser.add_argument("--text", action="store_true", help="type instead of talking")
    parser.add_argument("--plain", action="store_true",
                        help="print line by line instead of the live view (the default when not on a terminal)")
    parser.add_argument("--list-devices", action="store_true", help="show audio devices and exit")
    parser.add_argument("--no-realtime", action="store_true", help="with --input: feed the file as fast as possible")
    parser.add_argument("--simulate-echo", metavar="DELAY_MS:GAIN_DB",
                        help="with --input: feed the agent's own output back into its mic, like open speakers")
    parser.add_argument("--benchmark", nargs="?", const="all", choices=("v2v", "tts", "conversation", "wer", "all"),
                        help="measure the agent: v2v replays recordings through it in real time, "
                             "tts times every configured voice, conversation replays one long spoken "
                             "conversation (persona switch, cut-in) and sets each stage beside its model "
                             "alone, wer sets the agent's transcripts of the recordings beside "
                             "faster-whisper's own (default: all)")
    parser.add_argument("--bench-dir", metavar="FOLDER",
                        help="with --benchmark: recordings to replay, or the human clips of the conversation "
                             "(default: ../shared/speech)")
    parser.add_argument("--bench-out", metavar="FOLDER", default="bench", help="with --benchmark: where results go")
    parser.add_argument("--bench-runs", metavar="N", type=int, default=1, help="with --benchmark: replay each clip (or the conversation) N times")
    parser.add_argument("--bench-tiny-xtts", action="store_true",
                        help="with --benchmark tts: also time a tiny random-weight XTTS on this machine")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    from conversation.app import cli

    if argv and argv[0] in cli.SUBCOMMANDS:
        return cli.run_subcommand(argv[0], argv[1:])
    return cli.run(parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
