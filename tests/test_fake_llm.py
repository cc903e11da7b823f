"""tests/fake_llm.py driven through the real ``openai`` client."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from pathlib import Path

import openai
import pytest

TESTS_DIR = Path(__file__).resolve().parent
if str(TESTS_DIR) not in sys.path:
    sys.path.insert(0, str(TESTS_DIR))

from fake_llm import FakeLLM, Reply  # noqa: E402

MESSAGES = [
    {"role": "system", "content": "You formalize mathematics in Lean 4."},
    {"role": "user", "content": "State: every natural number is at least zero."},
]


def subprocess_script(body: dict) -> Reply | str:
    """Used by the standalone-process test (imported there as test_fake_llm:subprocess_script)."""
    last = body["messages"][-1]["content"]
    if last == "rate-limit me":
        return Reply(status=429, headers={"Retry-After": "5"})
    return f"theorem t : {last} := by omega"


def client_for(llm: FakeLLM, **kwargs) -> openai.OpenAI:
    return openai.OpenAI(base_url=llm.base_url, api_key="x", max_retries=0, **kwargs)


def test_normal_reply():
    seen = []

    def script(body):
        seen.append(body)
        return "theorem nat_nonneg (n : ℕ) : 0 ≤ n := Nat.zero_le n"

    with FakeLLM(script) as llm:
        assert llm.base_url.startswith("http://127.0.0.1:") and llm.base_url.endswith("/v1")
        client = client_for(llm)
        resp = client.chat.completions.create(model="test-model", messages=MESSAGES, temperature=0.2)
        assert resp.object == "chat.completion"
        assert resp.id.startswith("chatcmpl-") and resp.model == "test-model" and resp.created > 0
        (choice,) = resp.choices
        assert choice.index == 0 and choice.finish_reason == "stop"
        assert choice.message.role == "assistant"
        assert choice.message.content == "theorem nat_nonneg (n : ℕ) : 0 ≤ n := Nat.zero_le n"

        (body,) = llm.requests
        assert body == seen[0]
        assert body["messages"] == MESSAGES and body["model"] == "test-model" and body["temperature"] == 0.2
        assert llm.request_headers[0]["authorization"] == "Bearer x"


def test_usage_default_and_explicit():
    with FakeLLM(lambda body: "x" * 40) as llm:
        client = client_for(llm)
        usage = client.chat.completions.create(model="test-model", messages=MESSAGES).usage
        assert usage.completion_tokens == 10  # ~4 characters a token
        assert usage.prompt_tokens > 0
        assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens

        llm.push(Reply(text="ok", prompt_tokens=1234, completion_tokens=56))
        usage = client.chat.completions.create(model="test-model", messages=MESSAGES).usage
        assert (usage.prompt_tokens, usage.completion_tokens, usage.total_tokens) == (1234, 56, 1290)


def test_push_is_fifo_before_script():
    with FakeLLM(lambda body: "from script") as llm:
        client = client_for(llm)
        llm.push(Reply(text="first"), "second")
        texts = [
            client.chat.completions.create(model="test-model", messages=MESSAGES).choices[0].message.content
            for _ in range(3)
        ]
        assert texts == ["first", "second", "from script"]
        assert len(llm.requests) == 3


def test_server_error_500():
    with FakeLLM(lambda body: Reply(status=500)) as llm:
        with pytest.raises(openai.InternalServerError) as exc_info:
            client_for(llm).chat.completions.create(model="test-model", messages=MESSAGES)
        err = exc_info.value
        assert err.status_code == 500
        assert err.type == "server_error"
        assert isinstance(err.body, dict) and "message" in err.body
        assert len(llm.requests) == 1  # max_retries=0: no retry


def test_rate_limit_429_with_retry_after():
    with FakeLLM() as llm:
        llm.push(Reply(status=429, text="Slow down.", headers={"Retry-After": "3"}))
        client = client_for(llm)
        with pytest.raises(openai.RateLimitError) as exc_info:
            client.chat.completions.create(model="test-model", messages=MESSAGES)
        err = exc_info.value
        assert err.status_code == 429
        assert err.response.headers["retry-after"] == "3"
        assert err.code == "rate_limit_exceeded"
        assert err.body["message"] == "Slow down."
        # the queue is drained: the next request goes to the (echo) script
        ok = client.chat.completions.create(model="test-model", messages=MESSAGES)
        assert ok.choices[0].message.content == MESSAGES[-1]["content"]


def test_delayed_reply_triggers_client_timeout():
    with FakeLLM(lambda body: Reply(text="too late", delay_s=5)) as llm:
        client = client_for(llm, timeout=0.3)
        start = time.monotonic()
        with pytest.raises(openai.APITimeoutError):
            client.chat.completions.create(model="test-model", messages=MESSAGES)
        assert time.monotonic() - start < 2
        assert len(llm.requests) == 1
        closing = time.monotonic()
    assert time.monotonic() - closing < 2  # closing does not wait for the sleeping handler


def test_malformed_body():
    with FakeLLM() as llm:
        llm.push(Reply(body='{"id": "chatcmpl-1", "choices": [', status=200))
        with pytest.raises((ValueError, openai.APIError)):  # openai 3.x lets json.JSONDecodeError through
            client_for(llm).chat.completions.create(model="test-model", messages=MESSAGES)


def test_malformed_error_body_still_maps_status():
    with FakeLLM() as llm:
        llm.push(Reply(status=502, body="<html>Bad Gateway</html>", headers={"Content-Type": "text/html"}))
        with pytest.raises(openai.APIStatusError) as exc_info:
            client_for(llm).chat.completions.create(model="test-model", messages=MESSAGES)
        assert exc_info.value.status_code == 502


def test_script_exception_becomes_500():
    def script(body):
        raise KeyError("boom")

    with FakeLLM(script) as llm, pytest.raises(openai.InternalServerError, match="KeyError"):
        client_for(llm).chat.completions.create(model="test-model", messages=MESSAGES)


def test_finish_reason_length():
    with FakeLLM(lambda body: Reply(text="theorem foo : ", finish_reason="length")) as llm:
        resp = client_for(llm).chat.completions.create(model="test-model", messages=MESSAGES)
        assert resp.choices[0].finish_reason == "length"


def test_models_list():
    with FakeLLM() as llm:
        client = client_for(llm)
        assert [m.id for m in client.models.list()] == ["test-model"]
        assert client.models.retrieve("test-model").id == "test-model"
        assert llm.requests == []  # only chat completion bodies are recorded


def test_streaming():
    with FakeLLM(lambda body: "theorem foo : 1 + 1 = 2 := by norm_num") as llm:
        stream = client_for(llm).chat.completions.create(
            model="test-model", messages=MESSAGES, stream=True, stream_options={"include_usage": True}
        )
        text, finish, usage = "", None, None
        for chunk in stream:
            if chunk.choices:
                text += chunk.choices[0].delta.content or ""
                finish = chunk.choices[0].finish_reason or finish
            usage = chunk.usage or usage
        assert text == "theorem foo : 1 + 1 = 2 := by norm_num"
        assert finish == "stop" and usage.completion_tokens > 0


def test_concurrent_requests_are_all_recorded():
    with FakeLLM(lambda body: body["messages"][-1]["content"].upper()) as llm:
        client = client_for(llm)
        results: dict[int, str] = {}

        def worker(i: int) -> None:
            resp = client.chat.completions.create(model="test-model", messages=[{"role": "user", "content": f"q{i}"}])
            results[i] = resp.choices[0].message.content

        threads = [threading.Thread(target=worker, args=(i,)) for i in range(16)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=10)
        assert results == {i: f"Q{i}" for i in range(16)}
        assert sorted(r["messages"][0]["content"] for r in llm.requests) == sorted(f"q{i}" for i in range(16))


def test_standalone_process(tmp_path):
    port_file = tmp_path / "port"
    proc = subprocess.Popen(
        [
            sys.executable,
            str(TESTS_DIR / "fake_llm.py"),
            "--port-file",
            str(port_file),
            "--script",
            "test_fake_llm:subprocess_script",
            "--delay",
            "0.2",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 15
        while not port_file.exists():
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "fake_llm did not write its port file"
            time.sleep(0.02)
        port = int(port_file.read_text())
        client = openai.OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="x", max_retries=0, timeout=10)
        start = time.monotonic()
        resp = client.chat.completions.create(
            model="test-model", messages=[{"role": "user", "content": "∀ n : ℕ, 0 ≤ n"}]
        )
        assert time.monotonic() - start >= 0.2  # --delay
        assert resp.choices[0].message.content == "theorem t : ∀ n : ℕ, 0 ≤ n := by omega"
        with pytest.raises(openai.RateLimitError) as exc_info:
            client.chat.completions.create(model="test-model", messages=[{"role": "user", "content": "rate-limit me"}])
        assert exc_info.value.response.headers["retry-after"] == "5"
    finally:
        proc.terminate()
        out, err = proc.communicate(timeout=10)
    assert proc.returncode == 0, err
    assert f"127.0.0.1:{port}" in out


def test_bad_request_body_is_400():
    import urllib.error
    import urllib.request

    with FakeLLM() as llm:
        req = urllib.request.Request(
            f"{llm.base_url}/chat/completions", data=b"{nope", headers={"Content-Type": "application/json"}
        )
        with pytest.raises(urllib.error.HTTPError) as exc_info:
            urllib.request.urlopen(req, timeout=5)
        assert exc_info.value.code == 400
        assert json.loads(exc_info.value.read())["error"]["type"] == "invalid_request_error"
        assert llm.requests == []


def test_response_echoes_requested_model():
    with FakeLLM(lambda body: "ok") as llm:
        assert client_for(llm).chat.completions.create(model="other-model", messages=MESSAGES).model == "other-model"
