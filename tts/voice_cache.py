"""Content-keyed cache of voice conditioning, in memory and on disk.

Computing XTTS conditioning runs two encoders over the reference clips; it
should happen once per voice, ever. The key hashes what the result depends
on (clip bytes, model identity, conditioning settings), never file names,
so a restart, a voice swap or a copied model directory recomputes nothing,
while an edited clip or a new checkpoint does.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Generic, TypeVar

import numpy as np

logger = logging.getLogger(__name__)

# Bump when the stored arrays change meaning, so old files are ignored.
CACHE_FORMAT = 1
# Hashing 2 x 1 MiB of model.pth plus its size tells checkpoints apart
# without reading 1.8 GB at every start.
_MODEL_SAMPLE_BYTES = 1 << 20

Arrays = dict[str, np.ndarray]
T = TypeVar("T")


def file_digest(path: Path) -> str:
    """sha256 of a whole file (reference clips are small)."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def model_identity(checkpoint_dir: Path, files: Iterable[str] = ("config.json", "vocab.json")) -> str:
    """Cheap fingerprint of a checkpoint: small files whole, model.pth sampled."""
    digest = hashlib.sha256()
    for name in files:
        path = checkpoint_dir / name
        if path.is_file():
            digest.update(name.encode())
            digest.update(path.read_bytes())
    weights = checkpoint_dir / "model.pth"
    size = weights.stat().st_size
    digest.update(f"model.pth:{size}".encode())
    with weights.open("rb") as handle:
        digest.update(handle.read(_MODEL_SAMPLE_BYTES))
        handle.seek(max(0, size - _MODEL_SAMPLE_BYTES))
        digest.update(handle.read(_MODEL_SAMPLE_BYTES))
    return digest.hexdigest()


def conditioning_key(model_id: str, reference_digests: Iterable[str], settings: Mapping[str, object]) -> str:
    """One key for (model, clips in order, conditioning settings)."""
    payload = {
        "format": CACHE_FORMAT,
        "model": model_id,
        # Order matters: XTTS concatenates the clips before cutting gpt_cond_len.
        "references": list(reference_digests),
        "settings": dict(sorted(settings.items())),
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:32]


@dataclass
class CacheStats:
    computations: int = 0
    disk_hits: int = 0
    memory_hits: int = 0


class VoiceCache(Generic[T]):
    """Memory holds ready values (e.g. tensors on the GPU); disk holds arrays.

    `encode`/`decode` convert between the two, so this module needs no torch.
    A `directory` of None keeps the cache in memory only.
    """

    def __init__(
        self,
        directory: Path | None,
        encode: Callable[[T], Arrays],
        decode: Callable[[Arrays], T],
    ) -> None:
        self._directory = directory
        self._encode = encode
        self._decode = decode
        self._memory: dict[str, T] = {}
        self.stats = CacheStats()

    def get(self, key: str, compute: Callable[[], T]) -> T:
        if key in self._memory:
            self.stats.memory_hits += 1
            return self._memory[key]
        stored = self._read(key)
        if stored is not None:
            self.stats.disk_hits += 1
            value = self._decode(stored)
        else:
            value = compute()
            self.stats.computations += 1
            self._write(key, self._encode(value))
        self._memory[key] = value
        return value

    def __contains__(self, key: str) -> bool:
        path = self._path(key)
        return key in self._memory or (path is not None and path.is_file())

    def _path(self, key: str) -> Path | None:
        return None if self._directory is None else self._directory / f"{key}.npz"

    def _read(self, key: str) -> Arrays | None:
        path = self._path(key)
        if path is None or not path.is_file():
            return None
        try:
            with np.load(path, allow_pickle=False) as stored:
                return {name: stored[name] for name in stored.files}
        except (OSError, ValueError) as error:
            # A truncated or foreign file is just a miss; it gets rewritten.
            logger.warning("ignoring unreadable voice cache file %s: %s", path, error)
            return None

    def _write(self, key: str, arrays: Arrays) -> None:
        path = self._path(key)
        if path is None:
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        # Write then rename, so a crash never leaves a half file under the key.
        handle, temp_name = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
        try:
            with os.fdopen(handle, "wb") as temp_file:
                np.savez(temp_file, **arrays)
            os.replace(temp_name, path)
        except BaseException:
            Path(temp_name).unlink(missing_ok=True)
            raise
