#!/usr/bin/env python3
"""A scriptable OpenAI-compatible chat-completions server for tests (stdlib only).

In-process::

    from fake_llm import FakeLLM, Reply

    with FakeLLM(lambda body: "theorem foo : True := trivial") as llm:
        client = openai.OpenAI(base_url=llm.base_url, api_key="x", max_retries=0)
        client.chat.completions.create(model="test-model", messages=[...])
        llm.push(Reply(status=429, headers={"Retry-After": "1"}))   # next request only
        llm.requests                                                  # bodies received so far

Standalone (e.g. for a CLI run as a subprocess)::

    python tests/fake_llm.py --port-file PATH [--script MODULE:FUNC] [--delay S] [--host H] [--port P]

writes the port number to PATH (atomically) once listening and serves until SIGTERM / SIGINT.  MODULE
is imported with tests/ on sys.path; FUNC(body: dict) -> Reply | str.  Without --script the server
echoes the last user message.

Endpoints: POST /v1/chat/completions (also ``stream: true`` as server-sent events), GET /v1/models,
GET /v1/models/<id>.  Non-2xx replies carry an OpenAI-style error body
``{"error": {"message", "type", "param", "code"}}`` plus the reply's headers (e.g. Retry-After).

Like the real endpoints: a model named like OpenAI's o-series or GPT-5 (``o1``, ``o3-mini``, ``o4-mini``,
``gpt-5``, ``gpt-5-mini``) refuses ``max_tokens`` and a temperature other than 1 with api.openai.com's HTTP 400
bodies; a ``Reply(reasoning=...)`` is served as ``reasoning_content`` beside the content (vLLM, DeepSeek);
``finish_reason=None`` is sent as ``null`` (some proxies); with ``honour_max_tokens`` (``--honour-max-tokens``)
a reply longer than the request's budget (about 4 characters a token, reasoning included) is cut there and
finished with ``length``.

Faults that hit every chat completion (``FakeLLM(fault=...)``, ``--fault``; ``GET /v1/models`` still answers, as a
broken proxy in front of a live server does): ``junk`` (a 200 with an HTML page), ``no-choices`` (a completion
object with an empty ``choices``), ``503`` (an overloaded server).
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import importlib
import json
import os
import re
import signal
import socket
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

DEFAULT_MODEL = "test-model"

# status -> (error type, error code), shaped like api.openai.com's error bodies
_ERRORS: dict[int, tuple[str, str | None]] = {
    400: ("invalid_request_error", None),
    401: ("invalid_request_error", "invalid_api_key"),
    403: ("permission_error", None),
    404: ("invalid_request_error", "not_found"),
    408: ("timeout_error", None),
    409: ("conflict_error", None),
    422: ("invalid_request_error", None),
    429: ("requests", "rate_limit_exceeded"),
    500: ("server_error", None),
    502: ("server_error", "bad_gateway"),
    503: ("server_error", "service_unavailable"),
    504: ("server_error", "gateway_timeout"),
}
_DEFAULT_MESSAGES = {
    400: "Bad request.",
    401: "Incorrect API key provided.",
    404: "Not found.",
    429: "Rate limit reached for test-model. Please try again later.",
    500: "The server had an error while processing your request. Sorry about that!",
    503: "The server is overloaded or not ready yet.",
}


@dataclass
class Reply:
    """One scripted answer.

    text:        assistant message content (for an error status: the error message)
    status:      HTTP status; non-2xx gives an OpenAI-style error body
    delay_s:     sleep before answering (to trigger client timeouts)
    headers:     extra response headers, e.g. {"Retry-After": "2"}
    body:        raw response body override (e.g. malformed JSON), sent as-is with ``status``
    finish_reason: "stop", "length", ..., or None (sent as null)
    reasoning:   the model's separate reasoning, sent as ``reasoning_content``
    prompt_tokens / completion_tokens: usage numbers (default: rough counts, ~4 characters a token)
    """

    text: str = ""
    status: int = 200
    delay_s: float = 0
    headers: dict[str, str] = field(default_factory=dict)
    body: str | None = None
    finish_reason: str | None = "stop"
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    reasoning: str | None = None  # served as message.reasoning_content


Script = Callable[[dict], "Reply | str"]


def rough_tokens(text: str) -> int:
    return (len(text) + 3) // 4


def prompt_token_estimate(body: dict) -> int:
    total = 0
    for msg in body.get("messages") or []:
        content = msg.get("content") if isinstance(msg, dict) else msg
        if not isinstance(content, str):
            content = json.dumps(content, ensure_ascii=False)
        total += 4 + rough_tokens(content or "")
    return total + 3


def echo_script(body: dict) -> str:
    """Default script: the content of the last user message."""
    for msg in reversed(body.get("messages") or []):
        if isinstance(msg, dict) and msg.get("role") == "user":
            content = msg.get("content")
            return content if isinstance(content, str) else json.dumps(content, ensure_ascii=False)
    return ""


def error_body(status: int, message: str | None = None) -> dict:
    etype, code = _ERRORS.get(status, ("server_error" if status >= 500 else "invalid_request_error", None))
    msg = message or _DEFAULT_MESSAGES.get(status) or f"HTTP {status}"
    return {"error": {"message": msg, "type": etype, "param": None, "code": code}}


_REASONING_MODEL = re.compile(r"^(?:o\d(?:$|[-.])|gpt-5)")


def reasoning_model_refusal(body: dict) -> dict | None:
    """The HTTP 400 body api.openai.com sends an o-series or GPT-5 request that carries ``max_tokens`` or a
    temperature other than 1, else None."""
    if not _REASONING_MODEL.match(str(body.get("model") or "")):
        return None
    if "max_tokens" in body:
        return {
            "error": {
                "message": "Unsupported parameter: 'max_tokens' is not supported with this model. Use "
                "'max_completion_tokens' instead.",
                "type": "invalid_request_error",
                "param": "max_tokens",
                "code": "unsupported_parameter",
            }
        }
    if "temperature" in body and body["temperature"] != 1:
        return {
            "error": {
                "message": f"Unsupported value: 'temperature' does not support {body['temperature']} "
                "with this model. Only the default (1) value is supported.",
                "type": "invalid_request_error",
                "param": "temperature",
                "code": "unsupported_value",
            }
        }
    return None


def budget_of(body: dict) -> int | None:
    value = body.get("max_completion_tokens", body.get("max_tokens"))
    return int(value) if isinstance(value, int | float) else None


def cut_to_budget(reply: Reply, budget: int) -> Reply:
    """The reply as a server that stops at ``budget`` output tokens sends it (reasoning counts first)."""
    reasoning, text = reply.reasoning or "", reply.text
    if rough_tokens(reasoning) + rough_tokens(text) <= budget:
        return reply
    chars = budget * 4
    if reasoning:
        reasoning, chars = reasoning[:chars], max(0, chars - len(reasoning))
    return Reply(
        **{
            **reply.__dict__,
            "text": text[:chars],
            "reasoning": reasoning or None,
            "finish_reason": "length",
            "completion_tokens": budget,
        }
    )


class FakeLLM:
    """OpenAI-compatible server on 127.0.0.1:<ephemeral port>, running in a daemon thread."""

    def __init__(
        self,
        script: Script | None = None,
        *,
        model: str = DEFAULT_MODEL,
        host: str = "127.0.0.1",
        port: int = 0,
        delay_s: float = 0.0,
        honour_max_tokens: bool = False,
        fault: str | None = None,
    ):
        self.script: Script = script or echo_script
        if fault is not None and fault not in FAULTS:
            raise ValueError(f"unknown fault {fault!r} (one of {', '.join(FAULTS)})")
        self.fault = fault  # every chat completion fails this way (FAULTS); GET /v1/models still answers
        self.honour_max_tokens = honour_max_tokens  # cut replies at the request's budget (finish_reason length)
        self.model = model
        self.delay_s = delay_s  # added to every chat completion
        self._host = host
        self._port = port
        self._lock = threading.Lock()
        self.embedding_requests: list[dict] = []
        self._requests: list[dict] = []
        self._headers: list[dict[str, str]] = []
        self._queue: deque[Reply] = deque()
        self._counter = 0
        self._stop = threading.Event()
        self._conns: set[socket.socket] = set()  # open client connections (closed on close())
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle
    def start(self) -> FakeLLM:
        if self._httpd is not None:
            return self
        self._stop.clear()
        handler = type("_BoundHandler", (_Handler,), {"fake": self})
        self._httpd = ThreadingHTTPServer((self._host, self._port), handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, name="fake-llm", daemon=True
        )
        self._thread.start()
        return self

    def close(self) -> None:
        self._stop.set()  # wakes up handlers sleeping on a delay
        with self._lock:
            conns, self._conns = list(self._conns), set()
        for conn in conns:  # end keep-alive handler threads instead of leaving them blocked on reads
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> FakeLLM:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- info
    @property
    def port(self) -> int:
        if self._httpd is None:
            raise RuntimeError("FakeLLM is not started")
        return self._httpd.server_address[1]

    @property
    def base_url(self) -> str:
        return f"http://{self._host}:{self.port}/v1"

    @property
    def requests(self) -> list[dict]:
        """Parsed JSON bodies received at /v1/chat/completions, oldest first (a snapshot copy)."""
        with self._lock:
            return list(self._requests)

    @property
    def request_headers(self) -> list[dict[str, str]]:
        """Headers (lower-cased names) of those requests, same order as ``requests``."""
        with self._lock:
            return [dict(h) for h in self._headers]

    # -- scripting
    def push(self, *replies: Reply | str) -> None:
        """Queue one-off replies, consumed FIFO before the script is consulted."""
        with self._lock:
            self._queue.extend(replies)

    def _record(self, body: dict, headers: dict[str, str]) -> tuple[int, Reply | str | None]:
        with self._lock:
            self._requests.append(body)
            self._headers.append(headers)
            self._counter += 1
            queued = self._queue.popleft() if self._queue else None
            return self._counter, queued

    def _sleep(self, seconds: float) -> None:
        if seconds > 0:
            self._stop.wait(seconds)


class _Handler(BaseHTTPRequestHandler):
    fake: FakeLLM  # set on the per-server subclass
    protocol_version = "HTTP/1.1"
    server_version = "FakeLLM/1.0"

    def setup(self) -> None:
        super().setup()
        with self.fake._lock:
            self.fake._conns.add(self.connection)

    def finish(self) -> None:
        with self.fake._lock:
            self.fake._conns.discard(self.connection)
        with contextlib.suppress(OSError):
            super().finish()

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    # -- helpers
    def _send(
        self, status: int, body: bytes, headers: dict[str, str] | None = None, content_type: str = "application/json"
    ) -> None:
        try:
            self.send_response(status)
            extra = dict(headers or {})
            names = {k.lower() for k in extra}
            if "content-type" not in names:
                self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            for k, v in extra.items():
                self.send_header(k, str(v))
            self.end_headers()
            self.wfile.write(body)
            self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError, ConnectionAbortedError):
            self.close_connection = True

    def _send_json(self, status: int, obj: object, headers: dict[str, str] | None = None) -> None:
        self._send(status, json.dumps(obj, ensure_ascii=False).encode("utf-8"), headers)

    def _path(self) -> str:
        return self.path.split("?", 1)[0].rstrip("/")

    def _embeddings(self, raw: bytes) -> None:
        """Deterministic embeddings: a hashed bag of words (64 dimensions), so similar texts are close."""
        body = json.loads(raw or b"{}")
        inputs = body.get("input", [])
        inputs = [inputs] if isinstance(inputs, str) else inputs
        with self.fake._lock:
            self.fake.embedding_requests.append(body)
        data = []
        for i, text in enumerate(inputs):
            vec = [0.0] * 64
            for word in re.findall(r"[a-z0-9]+", str(text).lower()):
                vec[int(hashlib.md5(word.encode()).hexdigest(), 16) % 64] += 1.0
            data.append({"object": "embedding", "index": i, "embedding": vec})
        self._send_json(
            200,
            {
                "object": "list",
                "data": data,
                "model": body.get("model", ""),
                "usage": {"prompt_tokens": 0, "total_tokens": 0},
            },
        )

    # -- routes
    def do_GET(self) -> None:
        path = self._path()
        model = {"id": self.fake.model, "object": "model", "created": 0, "owned_by": "fake-llm"}
        if path == "/v1/models":
            self._send_json(200, {"object": "list", "data": [model]})
        elif path == f"/v1/models/{self.fake.model}":
            self._send_json(200, model)
        else:
            self._send_json(404, error_body(404, f"Unknown path: GET {path}"))

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        path = self._path()
        if path == "/v1/embeddings":
            self._embeddings(raw)
            return
        if path != "/v1/chat/completions":
            self._send_json(404, error_body(404, f"Unknown path: POST {path}"))
            return
        try:
            body = json.loads(raw or b"null")
            if not isinstance(body, dict):
                raise ValueError("request body must be a JSON object")
        except ValueError as e:
            self._send_json(400, error_body(400, f"Invalid JSON body: {e}"))
            return
        fake = self.fake
        n, reply = fake._record(body, {k.lower(): v for k, v in self.headers.items()})
        if fake.fault is not None:
            reply = FAULTS[fake.fault]
        if reply is None:
            try:
                reply = fake.script(body)
            except Exception as e:  # surfaced to the client as a 500 with the reason
                reply = Reply(status=500, text=f"fake_llm script raised {type(e).__name__}: {e}")
        if isinstance(reply, str):
            reply = Reply(text=reply)
        refusal = reasoning_model_refusal(body)
        if refusal is not None and reply.status == 200 and reply.body is None:
            self._send_json(400, refusal, {"x-request-id": f"req_fake_{n}"})
            return
        budget = budget_of(body)
        if fake.honour_max_tokens and budget is not None and 200 <= reply.status < 300 and reply.body is None:
            reply = cut_to_budget(reply, budget)
        fake._sleep(fake.delay_s + reply.delay_s)
        headers = {"x-request-id": f"req_fake_{n}", **reply.headers}

        if reply.body is not None:
            self._send(reply.status, reply.body.encode("utf-8"), headers)
            return
        if not 200 <= reply.status < 300:
            self._send_json(reply.status, error_body(reply.status, reply.text or None), headers)
            return

        model = body.get("model") or fake.model
        prompt_tokens = reply.prompt_tokens if reply.prompt_tokens is not None else prompt_token_estimate(body)
        completion_tokens = (
            reply.completion_tokens
            if reply.completion_tokens is not None
            else (rough_tokens(reply.text) + rough_tokens(reply.reasoning or ""))
        )
        usage = {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        }
        cid, created = f"chatcmpl-fake-{n}", int(time.time())
        if body.get("stream"):
            self._stream(cid, created, model, reply, usage, headers, body)
            return
        self._send_json(
            reply.status,
            {
                "id": cid,
                "object": "chat.completion",
                "created": created,
                "model": model,
                "choices": [
                    {
                        "index": 0,
                        "message": {
                            "role": "assistant",
                            "content": reply.text,
                            "refusal": None,
                            **({"reasoning_content": reply.reasoning} if reply.reasoning is not None else {}),
                        },
                        "logprobs": None,
                        "finish_reason": reply.finish_reason,
                    }
                ],
                "usage": usage,
                "system_fingerprint": "fake_llm",
            },
            headers,
        )

    def _stream(
        self, cid: str, created: int, model: str, reply: Reply, usage: dict, headers: dict[str, str], body: dict
    ) -> None:
        def chunk(delta: dict, finish: str | None, with_usage: bool = False) -> dict:
            c = {
                "id": cid,
                "object": "chat.completion.chunk",
                "created": created,
                "model": model,
                "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
            }
            if with_usage:
                c["choices"], c["usage"] = [], usage
            return c

        text = reply.text
        pieces = [text[i : i + 16] for i in range(0, len(text), 16)] or [""]
        events = [chunk({"role": "assistant", "content": ""}, None)]
        events += [chunk({"content": p}, None) for p in pieces if p]
        events.append(chunk({}, reply.finish_reason))
        if (body.get("stream_options") or {}).get("include_usage"):
            events.append(chunk({}, None, with_usage=True))
        payload = "".join(f"data: {json.dumps(e, ensure_ascii=False)}\n\n" for e in events) + "data: [DONE]\n\n"
        self._send(reply.status, payload.encode("utf-8"), headers, content_type="text/event-stream")


# ------------------------------------------------------------------------------------------ CLI


def load_script(spec: str) -> Script:
    """``MODULE:FUNC`` -> the callable (MODULE imported with tests/ on sys.path)."""
    module_name, sep, func_name = spec.partition(":")
    if not sep or not module_name or not func_name:
        raise ValueError(f"--script must look like MODULE:FUNC, got {spec!r}")
    tests_dir = os.path.dirname(os.path.abspath(__file__))
    if tests_dir not in sys.path:
        sys.path.insert(0, tests_dir)
    obj: Any = importlib.import_module(module_name)
    for part in func_name.split("."):
        obj = getattr(obj, part)
    if not callable(obj):
        raise TypeError(f"{spec} is not callable")
    return obj


def _write_port_file(path: str, port: int) -> None:
    tmp = f"{path}.{os.getpid()}.tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(f"{port}\n")
    os.replace(tmp, path)


#: "fails every time" modes, as real endpoints misbehave: a reverse proxy's HTML error page sent with status 200
#: (a captive portal, a misrouted base URL), a completion object with no choices (vLLM and some proxies when the
#: backend fails), an overloaded server's 503 (an OpenAI-style error body)
FAULTS: dict[str, Reply] = {
    "junk": Reply(
        body="<html><head><title>Gateway</title></head><body><h1>Upstream unavailable</h1></body></html>",
        headers={"Content-Type": "text/html; charset=utf-8"},
    ),
    "no-choices": Reply(
        body=json.dumps(
            {
                "id": "chatcmpl-fake",
                "object": "chat.completion",
                "created": 0,
                "model": DEFAULT_MODEL,
                "choices": [],
                "usage": None,
            }
        )
    ),
    "503": Reply(status=503, text="The server is overloaded or not ready yet."),
}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--port-file", required=True, help="write the listening port here")
    ap.add_argument("--script", help="MODULE:FUNC taking the request body, returning Reply or str")
    ap.add_argument("--delay", type=float, default=0.0, help="extra seconds before every completion")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--model", default=DEFAULT_MODEL)
    ap.add_argument("--honour-max-tokens", action="store_true", help="cut replies at the request's budget")
    ap.add_argument("--fault", choices=sorted(FAULTS), help="every chat completion fails this way")
    args = ap.parse_args(argv)

    script = load_script(args.script) if args.script else None
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    with FakeLLM(
        script,
        model=args.model,
        host=args.host,
        port=args.port,
        delay_s=args.delay,
        honour_max_tokens=args.honour_max_tokens,
        fault=args.fault,
    ) as llm:
        _write_port_file(args.port_file, llm.port)
        print(f"fake_llm listening on {llm.base_url}", flush=True)
        while not stop.wait(0.5):
            pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
