"""From device blocks to clean 16 kHz VAD frames.

The device thread only pulls the speaker block and hands both blocks over;
resampling, echo cancellation and framing run on the event loop.
"""
from __future__ import annotations

import asyncio
from typing import AsyncIterator

import numpy as np

from audio_io.echo import FRAME_LEN as AEC_FRAME, EchoCanceller, probe_signal
from audio_io.player import Player
from audio_io.rates import SAMPLE_RATE as RATE
from audio_io.resample import Framer, StreamResampler

PROBE_LEAD_S = 0.3  # silence before the probe: the mic's quiet level, to tell "no echo" from "not cancelled"
PROBE_TURN = 0  # the player's turn id for sounds that answer no one (the probe, the greeting)


class FrontEnd:
    def __init__(self, player: Player, device_rate: int, vad_frame_len: int, echo: EchoCanceller,
                 output_latency: float = 0.0):
        self.player = player
        self.echo = echo
        self.output_latency = output_latency
        self._mic_resampler = StreamResampler(device_rate, RATE)
        self._far_resampler = StreamResampler(player.rate, RATE)
        self._mic_framer = Framer(AEC_FRAME)
        self._far_framer = Framer(AEC_FRAME)
        self._vad_framer = Framer(vad_frame_len)
        self._queue: asyncio.Queue = asyncio.Queue()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._samples = 0  # 16 kHz samples handed to the VAD: its clock

    def attach(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop

    # Device thread: do almost nothing.
    def on_block(self, mic: np.ndarray, t: float) -> np.ndarray:
        speaker = self.player.read(len(mic), t + self.output_latency)
        self._loop.call_soon_threadsafe(self._queue.put_nowait, (mic, speaker))
        return speaker

    def probe_echo(self) -> None:
        """Play the echo probe, so the canceller knows the room before the first reply (docs/echo.md)."""
        settings = self.echo.settings
        if not settings.enabled or settings.probe_s <= 0:
            return
        lead = np.zeros(int(PROBE_LEAD_S * self.player.rate), dtype=np.float32)
        self.echo.start_probe()
        self.player.push(PROBE_TURN, 0, np.concatenate([lead, probe_signal(settings, self.player.rate)]),
                         sentence_done=True)

    @property
    def pending(self) -> bool:
        return not self._queue.empty()

    def end(self) -> None:
        self._loop.call_soon_threadsafe(self._queue.put_nowait, None)

    async def frames(self) -> AsyncIterator[tuple[np.ndarray, float, bool]]:
        """Yield (16 kHz frame, its start time, likely our own echo) until the source ends."""
        pending_far: list[np.ndarray] = []
        echo_in_frame = False
        while (item := await self._queue.get()) is not None:
            mic, speaker = item
            pending_far += self._far_framer(self._far_resampler(speaker))
            for mic_frame in self._mic_framer(self._mic_resampler(mic)):
                far = pending_far.pop(0) if pending_far else np.zeros(AEC_FRAME, dtype=np.float32)
                clean = self.echo.process(mic_frame, far)
                echo_in_frame = echo_in_frame or self.echo.likely_echo  # any 10 ms part taints the frame
                for frame in self._vad_framer(clean):
                    t = self._samples / RATE
                    self._samples += len(frame)
                    yield frame, t, echo_in_frame
                    echo_in_frame = False
