"""llama.cpp's own OpenAI-compatible server (`python -m llama_cpp.server`) as a test's subprocess.

`LlamaServer` serves one GGUF on 127.0.0.1, waits until /v1/models answers,
and keeps every line the server prints, stamped with the time it arrived, so
a test can read the server's own account of each request: a client that hung
up ("Disconnected from client"), a generation that ran to its end (llama.cpp's
timings, printed only then). Whoever starts it stops it (`with`, or stop()).

    with LlamaServer(gguf, port) as server:
        url = server.base_url   # http://127.0.0.1:PORT/v1
        ...
        server.kill()           # SIGKILL, as a crash would
        server.start()          # again, on the same port
"""
from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

MODEL_ALIAS = "smollm2"  # the name the server answers to, as `--model` would name it to the agent
READY_TIMEOUT_S = 90.0  # loading a 100 MB model takes a second or two; a busy machine, much longer
STOP_TIMEOUT_S = 10.0
OUTPUT_TAIL_LINES = 30  # shown when the server fails to start

# The server's own lines the tests read.
DISCONNECTED = re.compile(r"Disconnected from client")
GENERATION_DONE = re.compile(r"llama_perf_context_print:\s+eval time = .* / +(\d+) runs")
REQUEST = re.compile(r'"POST /v1/chat/completions HTTP/1\.1" 200')


@dataclass(frozen=True)
class ServerLine:
    at: float  # time.monotonic() when it was read
    text: str


class LlamaServer:
    def __init__(self, model: Path, port: int, n_ctx: int = 2048, threads: int = 1):
        self.model = model
        self.port = port
        self.n_ctx = n_ctx
        self.threads = threads  # as the embedded backend's default: one core stays free for speech
        self._process: subprocess.Popen | None = None
        self._reader: threading.Thread | None = None
        self._lines: list[ServerLine] = []
        self._lock = threading.Lock()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def command(self) -> list[str]:
        return [sys.executable, "-m", "llama_cpp.server", "--model", str(self.model),
                "--model_alias", MODEL_ALIAS, "--host", "127.0.0.1", "--port", str(self.port),
                "--n_ctx", str(self.n_ctx), "--n_threads", str(self.threads),
                "--n_threads_batch", str(self.threads),
                # By default a new request cuts off the one streaming; off, a request that is never
                # hung up on keeps the model until its end, so a cancelled reply shows in the log.
                "--interrupt_requests", "False"]

    # --- lifecycle -------------------------------------------------------------
    def start(self, timeout_s: float = READY_TIMEOUT_S) -> "LlamaServer":
        if self.running:
            raise RuntimeError(f"the llama.cpp server on port {self.port} is already running")
        self._reap()  # one that died by itself
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}  # its prints reach the log as they happen
        self._process = subprocess.Popen(self.command(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL, env=env, text=True, errors="replace")
        self._reader = threading.Thread(target=self._read, args=(self._process.stdout,),
                                        name="llama-server-output", daemon=True)
        self._reader.start()
        try:
            self._wait_ready(timeout_s)
        except BaseException:
            self.stop()
            raise
        return self

    def kill(self) -> None:
        """Die at once, mid-whatever, as a crashed server does."""
        if self._process is not None:
            self._process.send_signal(signal.SIGKILL)
        self._reap()

    def stop(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self._process.kill()
        self._reap()

    def __enter__(self) -> "LlamaServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def _reap(self) -> None:
        if self._process is None:
            return
        self._process.wait()
        self._reader.join(timeout=STOP_TIMEOUT_S)  # the pipe ends with the process
        self._process.stdout.close()
        self._process, self._reader = None, None

    def _read(self, stream) -> None:
        for line in stream:
            with self._lock:
                self._lines.append(ServerLine(time.monotonic(), line.rstrip("\n")))

    def _wait_ready(self, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(f"the llama.cpp server exited with {self._process.returncode} before it was "
                                   f"ready; its output:\n{self.output_tail()}")
            if self._answers_models():
                return
            time.sleep(0.1)
        raise RuntimeError(f"the llama.cpp server on port {self.port} did not answer /v1/models within "
                           f"{timeout_s:g} s; its output:\n{self.output_tail()}")

    def _answers_models(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.base_url}/models", timeout=2) as response:
                return any(m.get("id") == MODEL_ALIAS for m in json.load(response).get("data", []))
        except (OSError, ValueError):  # not listening yet, or still starting up
            return False

    # --- what it said ----------------------------------------------------------
    def lines(self, since: int = 0) -> list[ServerLine]:
        with self._lock:
            return self._lines[since:]

    def mark(self) -> int:
        """A place in the output: lines(since=mark) is what it printed afterwards."""
        with self._lock:
            return len(self._lines)

    def matching(self, pattern: re.Pattern, since: int = 0) -> list[ServerLine]:
        return [line for line in self.lines(since) if pattern.search(line.text)]

    def output(self, since: int = 0) -> str:
        return "\n".join(line.text for line in self.lines(since))

    def output_tail(self, count: int = OUTPUT_TAIL_LINES) -> str:
        return "\n".join(line.text for line in self.lines()[-count:])
