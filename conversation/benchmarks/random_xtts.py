"""Random-weight XTTS v2 checkpoints, built on the fly (no real weights needed).

`tiny` is for tests: a 2-layer x 64-channel GPT with the real HiFi-GAN
decoder and speaker encoder (their sizes are fixed in coqui-tts). `full`
has the shapes of the released XTTS v2, for GPU benchmarks of speed, not
sound. Random weights never emit the stop token, so every sentence runs to
the audio token cap: set the cap to the audio length you want to time.

Build a full-size one for a GPU benchmark:
    python -m conversation.benchmarks.random_xtts --shape full xtts-random
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

# model_args that differ from coqui-tts defaults, as in XTTS-v2's config.json.
_XTTS_V2_ARGS = {
    "gpt_layers": 30,
    "gpt_n_model_channels": 1024,
    "gpt_n_heads": 16,
    "gpt_max_audio_tokens": 605,
    "gpt_max_text_tokens": 402,
    "gpt_max_prompt_tokens": 70,
    "gpt_num_audio_tokens": 1026,
    "gpt_start_audio_token": 1024,
    "gpt_stop_audio_token": 1025,
    "gpt_use_perceiver_resampler": True,
    "decoder_input_dim": 1024,
    "d_vector_dim": 512,
}
SHAPES = {
    "full": {**_XTTS_V2_ARGS},
    # 64 audio-token positions: a sentence can never run long in a test.
    "tiny": {
        **_XTTS_V2_ARGS,
        "gpt_layers": 2,
        "gpt_n_model_channels": 64,
        "gpt_n_heads": 4,
        "gpt_max_audio_tokens": 64,
        "decoder_input_dim": 64,
    },
}
_XTTS_V2_TEXT_TOKENS = 6681  # size of the released vocab.json


def build_vocab(path: Path, pad_to: int | None = None) -> None:
    """coqui-tts's shipped BPE vocab plus the special tokens XTTS needs.

    XTTS prefixes text with a language tag ("[en]") and wraps it in
    [START]/[STOP]; the shipped tortoise vocab lacks [START] and the tags.
    """
    import TTS
    from TTS.tts.configs.xtts_config import XttsConfig

    vocab = json.loads((Path(TTS.__file__).parent / "tts/utils/assets/tortoise/tokenizer.json").read_text())
    tokens = ["[START]"] + [f"[{code}]" for code in XttsConfig().languages]
    next_id = max(vocab["model"]["vocab"].values()) + 1
    if pad_to is not None:
        tokens += [f"[unused{n}]" for n in range(pad_to - next_id - len(tokens))]
    for offset, token in enumerate(tokens):
        vocab["model"]["vocab"][token] = next_id + offset
        vocab["added_tokens"].append(
            {"id": next_id + offset, "special": True, "content": token,
             "single_word": False, "lstrip": False, "rstrip": False, "normalized": False}
        )  # fmt: skip
    path.write_text(json.dumps(vocab))


def build_random_checkpoint(out_dir: Path, shape: str = "tiny", seed: int = 0) -> Path:
    """Write config.json, vocab.json and model.pth of a random XTTS v2."""
    import torch
    from TTS.tts.configs.xtts_config import XttsConfig
    from TTS.tts.layers.xtts.tokenizer import VoiceBpeTokenizer
    from TTS.tts.models.xtts import Xtts

    out_dir.mkdir(parents=True, exist_ok=True)
    build_vocab(out_dir / "vocab.json", pad_to=_XTTS_V2_TEXT_TOKENS if shape == "full" else None)
    config = XttsConfig()
    for name, value in SHAPES[shape].items():
        setattr(config.model_args, name, value)
    # Sampling and cloning defaults of the released config.json.
    config.temperature, config.repetition_penalty = 0.75, 5.0
    config.gpt_cond_len, config.gpt_cond_chunk_len, config.max_ref_len = 30, 4, 30
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        model = Xtts(config)
        # The GPT is only built once the tokenizer tells it the text vocab size.
        model.tokenizer = VoiceBpeTokenizer(vocab_file=out_dir / "vocab.json")
        model.init_models()
    torch.save({"model": model.state_dict()}, out_dir / "model.pth")
    (out_dir / "config.json").write_text(json.dumps(config.to_dict(), indent=2))
    return out_dir


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--shape", choices=sorted(SHAPES), default="tiny")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    print(build_random_checkpoint(args.out_dir, args.shape, args.seed))


if __name__ == "__main__":
    main()
