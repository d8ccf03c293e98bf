"""A real, local OpenAI-compatible chat server for tests (stdlib only).

`ChatServer` listens on 127.0.0.1 on an ephemeral port and answers
POST /v1/chat/completions with `stream: true` the way OpenAI does: HTTP/1.1,
chunked transfer encoding, one Server-Sent Event per chunk
(`data: {"object": "chat.completion.chunk", ...}`), then `data: [DONE]`.

Modes:
    normal   streams `reply` a word at a time, `delay_s` apart
    fail     streams `fail_after` pieces, then drops the connection mid-body
    error    answers HTTP 500 with an OpenAI-style JSON error
    hang     reads the request and never answers (until the server stops)
    stall    sends the headers and `fail_after` pieces, then goes silent

Every request is recorded (`server.requests`): its path, headers and JSON
body, how many pieces were sent, and whether the client hung up before the
reply was complete, so tests can check what the agent asked for and that it
closed the stream when it cancelled a reply.

    with ChatServer(mode="normal") as server:
        url = server.base_url   # http://127.0.0.1:PORT/v1
"""
from __future__ import annotations

import json
import re
import socket
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

REPLY = ("Sure, I can help you with that right away. The weather today is sunny and warm. "
         "Have a lovely afternoon!")
MODES = ("normal", "fail", "error", "hang", "stall")


def pieces_of(text: str) -> list[str]:
    """Word-sized pieces that join back to `text`, like an LLM's tokens: 'Sure,', ' I', ' can', ..."""
    return re.findall(r"\s*\S+", text)


@dataclass
class RecordedRequest:
    path: str
    headers: dict[str, str]
    body: dict[str, Any] | None
    pieces_sent: int = 0
    completed: bool = False  # the whole reply and [DONE] went out
    client_closed: bool = False  # the client hung up while the reply was still streaming
    done: threading.Event = field(default_factory=threading.Event)  # the handler has finished

    @property
    def messages(self) -> list[dict[str, str]]:
        return (self.body or {}).get("messages", [])


class ChatServer:
    def __init__(self, mode: str = "normal", reply: str = REPLY, delay_s: float = 0.01, fail_after: int = 3,
                 model: str = "test-model", finish: str = "stop"):
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}")
        self.mode = mode
        self.reply = reply
        self.finish = finish  # why the reply ended: "stop", or "length" for the token limit
        self.delay_s = delay_s
        self.fail_after = fail_after
        self.model = model
        self.requests: list[RecordedRequest] = []
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self._httpd.daemon_threads = True
        self._thread: threading.Thread | None = None

    # --- lifecycle -------------------------------------------------------
    @property
    def port(self) -> int:
        return self._httpd.server_address[1]

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def start(self) -> "ChatServer":
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="sse-server", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()  # releases hung handlers
        self._httpd.shutdown()
        self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> "ChatServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # --- what the tests look at --------------------------------------------
    @property
    def pieces(self) -> list[str]:
        return pieces_of(self.reply)

    def chat_requests(self) -> list[RecordedRequest]:
        with self._lock:
            return [r for r in self.requests if r.path.endswith("/chat/completions")]

    def wait_for_requests(self, count: int = 1, timeout: float = 10.0) -> list[RecordedRequest]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = self.chat_requests()
            if len(found) >= count:
                return found
            time.sleep(0.02)
        raise AssertionError(f"expected {count} chat request(s) within {timeout} s, got {len(self.chat_requests())}")

    def _record(self, request: RecordedRequest) -> None:
        with self._lock:
            self.requests.append(request)


def _chunk(server: ChatServer, stream_id: str, created: int, delta: dict, finish: str | None) -> bytes:
    payload = {
        "id": stream_id, "object": "chat.completion.chunk", "created": created, "model": server.model,
        "system_fingerprint": "fp_test",
        "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
    }
    return f"data: {json.dumps(payload)}\n\n".encode()


def _handler_for(server: ChatServer):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = "sse-test/1.0"

        def log_message(self, format, *args):  # keep pytest's output clean
            pass

        def do_GET(self):
            if self.path.rstrip("/").endswith("/models"):
                self._json(200, {"object": "list", "data": [{"id": server.model, "object": "model"}]})
            else:
                self._json(404, {"error": {"message": f"no route {self.path}", "type": "not_found"}})

        def do_POST(self):
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            try:
                body = json.loads(raw) if raw else None
            except ValueError:
                body = None
            record = RecordedRequest(self.path, {k.lower(): v for k, v in self.headers.items()}, body)
            server._record(record)
            try:
                if not self.path.endswith("/chat/completions"):
                    self._json(404, {"error": {"message": f"no route {self.path}", "type": "not_found"}})
                elif not isinstance(body, dict) or not body.get("stream"):
                    self._json(400, {"error": {"message": "this test server only streams", "type": "invalid_request"}})
                elif server.mode == "error":
                    self._json(500, {"error": {"message": "the model crashed (test)", "type": "server_error",
                                               "param": None, "code": None}})
                elif server.mode == "hang":
                    server._stopping.wait()
                    self.close_connection = True
                else:
                    self._stream(record)
            finally:
                record.done.set()

        def _json(self, status: int, payload: dict) -> None:
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _write_chunk(self, data: bytes) -> None:
            self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
            self.wfile.flush()

        def _stream(self, record: RecordedRequest) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream; charset=utf-8")
            self.send_header("Cache-Control", "no-cache")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            stream_id, created = f"chatcmpl-test{len(server.requests)}", int(time.time())
            pieces = server.pieces
            try:
                self._write_chunk(_chunk(server, stream_id, created, {"role": "assistant", "content": ""}, None))
                for i, piece in enumerate(pieces):
                    if server.mode in ("fail", "stall") and i == server.fail_after:
                        if server.mode == "fail":
                            self._drop()
                        else:
                            server._stopping.wait()
                            self.close_connection = True
                        return
                    if server.delay_s:
                        time.sleep(server.delay_s)
                    self._write_chunk(_chunk(server, stream_id, created, {"content": piece}, None))
                    record.pieces_sent += 1
                self._write_chunk(_chunk(server, stream_id, created, {}, server.finish))
                self._write_chunk(b"data: [DONE]\n\n")
                self._write_chunk(b"")  # the last chunk of the body
                record.completed = True
            except (BrokenPipeError, ConnectionResetError, ConnectionAbortedError):
                record.client_closed = True
                self.close_connection = True

        def _drop(self) -> None:
            """Hang up in the middle of the body, as a crashed server would."""
            self.wfile.flush()
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            self.close_connection = True

    return Handler


if __name__ == "__main__":  # a manual check: python tests/sse_server.py [mode]
    import sys

    with ChatServer(mode=sys.argv[1] if len(sys.argv) > 1 else "normal", delay_s=0.05) as running:
        print(f"serving {running.mode} at {running.base_url} (Ctrl-C stops)")
        try:
            while True:
                time.sleep(1)
        except KeyboardInterrupt:
            pass
