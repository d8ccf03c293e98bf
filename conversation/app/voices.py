"""`main.py voices add|list|remove`: manage cloned XTTS voices."""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import yaml

from audio_io.files import AudioFileError, read_audio

from ..config import ConfigError, load_config, read_added_voices


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="main.py voices", description="Manage XTTS voices.")
    parser.add_argument("--config", default="config.yaml")
    sub = parser.add_subparsers(dest="action", required=True)
    add = sub.add_parser("add", help="register an XTTS voice and precompute its conditioning")
    add.add_argument("name")
    add.add_argument("clips", nargs="+", metavar="CLIP.wav")
    add.add_argument("--language", default="en")
    sub.add_parser("list", help="show every voice")
    remove = sub.add_parser("remove", help="forget a voice added with `voices add`")
    remove.add_argument("name")
    return parser.parse_args(argv)


def run(argv: list[str], print_fn=print) -> int:
    args = parse(argv)
    config_path = Path(args.config)
    config = load_config(config_path)
    voices_path = config_path.parent / config.voices_file
    if args.action == "list":
        added = read_added_voices(voices_path)
        for name, voice in config.voices.items():
            source = voices_path.name if name in added else config_path.name
            detail = voice.model if voice.backend == "piper" else ", ".join(p.name for p in voice.references)
            print_fn(f"{name:16} {voice.backend:6} {voice.language:6} {detail}  ({source})")
        return 0
    if args.action == "remove":
        added = read_added_voices(voices_path)
        if args.name not in added:
            where = f"it is defined in {config_path.name}: edit that file" if args.name in config.voices else "no such voice"
            raise ConfigError(f"voices remove: cannot remove {args.name!r}: {where}")
        del added[args.name]
        voices_path.write_text(yaml.safe_dump(added, sort_keys=True))
        print_fn(f"removed voice {args.name}")
        return 0
    return _add(args, config, config_path, voices_path, print_fn)


def _add(args, config, config_path: Path, voices_path: Path, print_fn) -> int:
    from tts.xtts import XttsSynthesizer
    from tts.xtts_settings import XttsVoice

    if args.name in config.voices:
        raise ConfigError(f"voices add: a voice named {args.name!r} already exists; pick another name")
    if config.tts.xtts is None:
        raise ConfigError("voices add: set tts.xtts.checkpoint_dir in the config first (see README: XTTS)")
    clips = [Path(clip).resolve() for clip in args.clips]
    for clip in clips:
        read_audio(clip)  # fail early, with a clear message, on an unreadable clip
    voice = XttsVoice(references=clips, language=args.language)
    synthesizer = XttsSynthesizer(config.tts.xtts)
    print_fn("loading XTTS ...")
    synthesizer.load()
    started = time.perf_counter()
    synthesizer.prepare_voice(voice)
    took = time.perf_counter() - started
    cached = "computed" if synthesizer.conditioning_computations else "found in the cache"
    added = read_added_voices(voices_path)
    added[args.name] = {"backend": "xtts", "references": [str(c) for c in clips], "language": voice.language}
    voices_path.write_text(yaml.safe_dump(added, sort_keys=True))
    print_fn(f"added voice {args.name}: conditioning {cached} in {took:.2f}s; saved in {voices_path}")
    synthesizer.close()
    return 0


__all__ = ["run", "AudioFileError"]
