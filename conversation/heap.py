"""Give memory freed during a turn back to the system.

A turn allocates and frees tens of megabytes of audio and model buffers on
several threads. glibc keeps freed blocks in its heaps, so the process's
resident memory crept up from turn to turn with nothing in use; after each
turn `malloc_trim(0)` returns them. Measured on spoken conversations of 24
and 40 turns, RSS over the first fifth: 739-818 MB without trimming, 631 MB
with. It takes well under a millisecond. Where the C library is not glibc
this does nothing.
"""
from __future__ import annotations

import ctypes


def _malloc_trim():
    try:
        return ctypes.CDLL("libc.so.6").malloc_trim
    except (OSError, AttributeError):
        return None


_MALLOC_TRIM = _malloc_trim()  # resolved once; never changes


def release_freed_memory() -> None:
    if _MALLOC_TRIM is not None:
        _MALLOC_TRIM(0)
