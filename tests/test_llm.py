"""autoform.llm.LLMClient through the real ``openai`` client against tests/fake_llm.py (no network).

Covers: a normal chat and its token accounting, the reply cache in ``llm_calls``, retries (5xx, 429 with
Retry-After, timeouts, truncated / empty replies), the errors a user sees (LLMUnavailable naming the endpoint
or the key), ping(), and the reply-parsing helpers.
"""

from __future__ import annotations

import json
import socket
import sys
import time
from pathlib import Path

import pytest

TESTS_DIR = Path(__file__).resolve().parent
if str(TESTS_DIR) not in sys.path:
    sys.path.insert(0, str(TESTS_DIR))

from fake_llm import FakeLLM, Reply  # noqa: E402

from autoform.config import LLMConfig, RoleLLM, Settings  # noqa: E402
from autoform.llm import (  # noqa: E402
    LLMClient,
    LLMUnavailable,
    MalformedReply,
    Message,
    code_blocks,
    json_block,
    one_lean_block,
)
from autoform.store import Store  # noqa: E402

MSGS = [
    Message(role="system", content="You formalize mathematics."),
    Message(role="user", content="State: 0 ≤ n for every natural n."),
]


@pytest.fixture(autouse=True)
def _no_env_key(monkeypatch):
    """The user's own OPENAI_* variables must not leak into these tests."""
    for var in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "AUTOFORM_MODEL"):
        monkeypatch.delenv(var, raising=False)


@pytest.fixture
def srv():
    with FakeLLM(lambda body: "default reply") as s:
        yield s


def make_settings(tmp_path: Path, base_url: str, **llm) -> Settings:
    cfg = {"base_url": base_url, "api_key": "k", "model": "m", "max_retries": 3, "timeout_s": 2}
    cfg.update(llm)
    return Settings(home=tmp_path, llm=LLMConfig(**cfg))


@pytest.fixture
def store(tmp_path):
    s = Store(tmp_path / "autoform.sqlite")
    yield s
    s.close()


@pytest.fixture
def client(tmp_path, srv, store):
    return LLMClient(make_settings(tmp_path, srv.base_url), store, retry_initial_s=0.01)


def calls(store: Store) -> list[dict]:
    return [dict(r) for r in store.query("SELECT * FROM llm_calls ORDER BY id")]


# ----------------------------------------------------------------------------------------- normal chat
def test_normal_chat_records_tokens_and_posts_used(client, srv, store):
    srv.push(Reply(text="theorem t : True := trivial", prompt_tokens=11, completion_tokens=7))
    req = client.request("prover", MSGS, posts_used=[3, 5])
    reply = client.chat(req, job_id=42, unit_id=9)

    assert reply.text == "theorem t : True := trivial"
    assert (reply.prompt_tokens, reply.completion_tokens) == (11, 7)
    assert reply.cached is False and reply.finish_reason == "stop" and reply.model == "m"

    (body,) = srv.requests
    assert body["model"] == "m"
    assert body["messages"] == [m.model_dump() for m in MSGS]
    assert body["temperature"] == 0.2 and body["max_tokens"] == 2048  # the LLMConfig defaults
    assert srv.request_headers[0]["authorization"] == "Bearer k"

    (row,) = calls(store)
    assert row["id"] == reply.call_id
    assert row["role"] == "prover" and row["model"] == "m"
    assert (row["prompt_tokens"], row["completion_tokens"]) == (11, 7)
    assert json.loads(row["posts_used"]) == [3, 5]
    assert row["cached"] == 0 and row["job_id"] == 42 and row["unit_id"] == 9
    assert row["response"] == "theorem t : True := trivial"
    assert json.loads(row["request"])["messages"][1]["content"] == MSGS[1].content
    assert store.llm_usage() == {"calls": 1, "cached": 0, "prompt_tokens": 11, "completion_tokens": 7}


def test_role_settings_choose_model_and_temperature(tmp_path, srv, store):
    settings = make_settings(tmp_path, srv.base_url, roles={"prover": RoleLLM(model="big", temperature=0.7,
                                                                            max_tokens=99)})
    client = LLMClient(settings, store, retry_initial_s=0.01)
    client.chat(client.request("prover", MSGS))
    client.chat(client.request("reader", MSGS))
    first, second = srv.requests
    assert (first["model"], first["temperature"], first["max_tokens"]) == ("big", 0.7, 99)
    assert (second["model"], second["temperature"], second["max_tokens"]) == ("m", 0.2, 2048)
    assert [r["model"] for r in calls(store)] == ["big", "m"]


def test_chat_without_store_works(tmp_path, srv):
    client = LLMClient(make_settings(tmp_path, srv.base_url), None, retry_initial_s=0.01)
    reply = client.chat(client.request("reader", MSGS))
    assert reply.text == "default reply" and reply.call_id == 0
    assert client.chat(client.request("reader", MSGS)).cached is False
    assert len(srv.requests) == 2  # no store, no cache


# ----------------------------------------------------------------------------------------------- cache
def test_same_request_twice_hits_the_cache(client, srv, store):
    srv.push(Reply(text="first answer", prompt_tokens=20, completion_tokens=4))
    a = client.chat(client.request("drafter", MSGS, posts_used=[1]))
    b = client.chat(client.request("drafter", MSGS, posts_used=[1]))

    assert len(srv.requests) == 1
    assert a.cached is False and b.cached is True
    assert a.text == b.text == "first answer" and b.model == "m"
    assert b.call_id != a.call_id

    rows = calls(store)
    assert [r["cached"] for r in rows] == [0, 1]
    assert rows[0]["cache_key"] == rows[1]["cache_key"]
    assert rows[1]["id"] == b.call_id and rows[1]["response"] == "first answer"
    # a cached call costs nothing
    assert (rows[1]["prompt_tokens"], rows[1]["completion_tokens"]) == (0, 0)
    assert store.llm_usage() == {"calls": 2, "cached": 1, "prompt_tokens": 20, "completion_tokens": 4}


def test_cache_survives_a_new_client(tmp_path, srv, store):
    """A resumed job (new process, same store) never pays twice."""
    first = LLMClient(make_settings(tmp_path, srv.base_url), store, retry_initial_s=0.01)
    assert first.chat(first.request("reader", MSGS)).cached is False
    again = LLMClient(make_settings(tmp_path, srv.base_url), store, retry_initial_s=0.01)
    assert again.chat(again.request("reader", MSGS)).cached is True
    assert len(srv.requests) == 1


def test_different_temperature_or_messages_is_a_new_request(tmp_path, srv, store):
    settings = make_settings(tmp_path, srv.base_url, roles={"hot": RoleLLM(temperature=0.9)})
    client = LLMClient(settings, store, retry_initial_s=0.01)
    client.chat(client.request("cold", MSGS))
    assert client.chat(client.request("hot", MSGS)).cached is False  # same messages, other temperature
    assert len(srv.requests) == 2 and srv.requests[1]["temperature"] == 0.9

    other = [MSGS[0], Message(role="user", content="State: 1 ≤ n + 1.")]
    assert client.chat(client.request("cold", other)).cached is False
    assert len(srv.requests) == 3
    assert client.chat(client.request("cold", other)).cached is True
    assert len(srv.requests) == 3
    assert [r["cached"] for r in calls(store)] == [0, 0, 0, 1]


def test_failed_call_is_not_cached(client, srv, store):
    srv.push(*[Reply(status=500)] * 4)
    with pytest.raises(LLMUnavailable):
        client.chat(client.request("reader", MSGS))
    assert calls(store) == []
    srv.push(Reply(text="now it works"))
    reply = client.chat(client.request("reader", MSGS))
    assert reply.text == "now it works" and reply.cached is False


# --------------------------------------------------------------------------------------------- retries
def test_500_then_success(client, srv, store):
    srv.push(Reply(status=500), Reply(text="recovered"))
    reply = client.chat(client.request("reader", MSGS))
    assert reply.text == "recovered"
    assert len(srv.requests) == 2
    assert len(calls(store)) == 1  # one call recorded, not one per HTTP attempt


@pytest.mark.parametrize("status", [502, 503, 408, 409])
def test_other_transient_statuses_are_retried(client, srv, status):
    srv.push(Reply(status=status), Reply(text="ok"))
    assert client.chat(client.request("reader", MSGS)).text == "ok"
    assert len(srv.requests) == 2


def test_429_honours_retry_after(client, srv):
    srv.push(Reply(status=429, headers={"Retry-After": "0.3"}), Reply(text="after the wait"))
    t0 = time.monotonic()
    reply = client.chat(client.request("reader", MSGS))
    elapsed = time.monotonic() - t0
    assert reply.text == "after the wait"
    assert len(srv.requests) == 2
    # retry_initial_s is 0.01: only the Retry-After header can make the client wait this long
    assert elapsed >= 0.28
    assert elapsed < 2.0


def test_timeout_then_success(tmp_path, srv, store):
    client = LLMClient(make_settings(tmp_path, srv.base_url, timeout_s=0.3), store, retry_initial_s=0.01)
    srv.push(Reply(text="too late", delay_s=1.0), Reply(text="in time"))
    t0 = time.monotonic()
    reply = client.chat(client.request("reader", MSGS))
    assert reply.text == "in time"
    assert len(srv.requests) == 2
    assert time.monotonic() - t0 < 1.0  # the slow request was abandoned, not waited for


def test_persistent_timeout_is_unavailable(tmp_path, srv):
    client = LLMClient(make_settings(tmp_path, srv.base_url, timeout_s=0.2, max_retries=1), None,
                       retry_initial_s=0.01)
    srv.push(Reply(text="late", delay_s=0.6), Reply(text="late", delay_s=0.6))
    with pytest.raises(LLMUnavailable) as ei:
        client.chat(client.request("reader", MSGS))
    assert srv.base_url in str(ei.value) and "in time" in str(ei.value)
    assert len(srv.requests) == 2


def test_persistent_500_is_unavailable_after_max_retries(client, srv, store):
    srv.push(*[Reply(status=500, text="boom inside")] * 10)
    with pytest.raises(LLMUnavailable) as ei:
        client.chat(client.request("reader", MSGS))
    assert len(srv.requests) == 4  # max_retries=3 -> 1 + 3
    msg = str(ei.value)
    assert srv.base_url in msg and "500" in msg
    assert calls(store) == []


def test_401_is_unavailable_immediately(client, srv):
    srv.push(*[Reply(status=401)] * 5)
    with pytest.raises(LLMUnavailable) as ei:
        client.chat(client.request("reader", MSGS))
    assert len(srv.requests) == 1
    msg = str(ei.value)
    assert "API key" in msg and "OPENAI_API_KEY" in msg and srv.base_url in msg


def test_404_names_the_endpoint(client, srv):
    srv.push(*[Reply(status=404, text="The model `m` does not exist")] * 5)
    with pytest.raises(LLMUnavailable) as ei:
        client.chat(client.request("reader", MSGS))
    assert len(srv.requests) == 1  # not retried
    msg = str(ei.value)
    assert srv.base_url in msg and "404" in msg and "does not exist" in msg


def test_wrong_base_url_path_is_a_404_naming_the_url(tmp_path, srv):
    bad = srv.base_url.removesuffix("/v1") + "/nope"
    client = LLMClient(make_settings(tmp_path, bad), None, retry_initial_s=0.01)
    with pytest.raises(LLMUnavailable) as ei:
        client.chat(client.request("reader", MSGS))
    assert bad in str(ei.value) and "404" in str(ei.value)


def test_400_is_not_retried(client, srv):
    srv.push(*[Reply(status=400, text="max_tokens too large")] * 5)
    with pytest.raises(LLMUnavailable) as ei:
        client.chat(client.request("reader", MSGS))
    assert len(srv.requests) == 1 and "max_tokens too large" in str(ei.value)


@pytest.mark.parametrize(
    "bad, words",
    [(Reply(text="```lean\ntheorem t : Tr", finish_reason="length"), "truncated"),
     (Reply(text=""), "empty"),
     (Reply(text="   \n  "), "empty")],
    ids=["truncated", "empty", "blank"],
)
def test_truncated_or_empty_reply_is_retried(client, srv, store, bad, words):
    srv.push(bad, Reply(text="a full answer"))
    reply = client.chat(client.request("reader", MSGS))
    assert reply.text == "a full answer" and len(srv.requests) == 2
    assert [r["response"] for r in calls(store)] == ["a full answer"]  # the bad reply is not cached


@pytest.mark.parametrize(
    "bad, words",
    [(Reply(text="```lean\ntheorem t : Tr", finish_reason="length"), "truncated"),
     (Reply(text=""), "empty")],
    ids=["truncated", "empty"],
)
def test_persistent_truncated_or_empty_reply_raises_malformed(client, srv, store, bad, words):
    srv.push(*[bad] * 10)
    with pytest.raises(MalformedReply) as ei:
        client.chat(client.request("reader", MSGS))
    assert words in str(ei.value) and srv.base_url in str(ei.value)
    assert len(srv.requests) == 4
    assert calls(store) == []


def test_reply_without_choices_is_malformed(client, srv):
    """A JSON object that is not a chat completion: observed MalformedReply (retried, then raised)."""
    srv.push(*[Reply(body="{}")] * 10)
    with pytest.raises(MalformedReply) as ei:
        client.chat(client.request("reader", MSGS))
    assert "no choices" in str(ei.value)
    assert len(srv.requests) == 4


@pytest.mark.parametrize(
    "body, content_type",
    [("{not json", None), ("<html>Bad gateway</html>", "text/html"), ("[]", None)],
    ids=["broken-json", "html-page", "json-list"],
)
def test_malformed_json_body_is_an_error_not_a_crash(client, srv, store, body, content_type):
    """A 200 whose body is not a chat completion (broken JSON, a proxy's HTML page, a JSON list).

    Observed: MalformedReply (retried like a truncated reply, raised after max_retries+1 requests), never the
    client library's JSONDecodeError / AttributeError.  (An earlier llm.py let those escape unretried.)"""
    headers = {"Content-Type": content_type} if content_type else {}
    srv.push(*[Reply(body=body, headers=headers)] * 10)
    with pytest.raises(MalformedReply) as ei:
        client.chat(client.request("reader", MSGS))
    assert srv.base_url in str(ei.value)
    assert len(srv.requests) == 4
    assert calls(store) == []


def test_malformed_json_body_then_success(client, srv):
    srv.push(Reply(body="{not json"), Reply(text="a real answer"))
    assert client.chat(client.request("reader", MSGS)).text == "a real answer"
    assert len(srv.requests) == 2


# ---------------------------------------------------------------------------------------------- API key
def test_openai_without_key_names_the_variable(tmp_path):
    settings = Settings(home=tmp_path, llm=LLMConfig(base_url="https://api.openai.com/v1", api_key=None))
    with pytest.raises(LLMUnavailable) as ei:
        LLMClient(settings, None)
    assert "OPENAI_API_KEY" in str(ei.value) and "api.openai.com" in str(ei.value)


def test_openai_key_from_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-from-env")
    settings = Settings(home=tmp_path, llm=LLMConfig(base_url="https://api.openai.com/v1", api_key=None))
    client = LLMClient(settings, None)  # no network: constructing the client does not call out
    assert client.client.api_key == "sk-from-env"


def test_local_endpoint_needs_no_key(tmp_path, srv, store):
    settings = make_settings(tmp_path, srv.base_url, api_key=None)
    client = LLMClient(settings, store, retry_initial_s=0.01)
    srv.push(Reply(text="keyless"))
    assert client.chat(client.request("reader", MSGS)).text == "keyless"
    assert len(srv.requests) == 1
    assert srv.request_headers[0]["authorization"].startswith("Bearer ")


# ------------------------------------------------------------------------------------------------ ping
def test_ping_lists_models(client, srv):
    assert client.ping() == [srv.model]
    assert srv.requests == []  # /v1/models is not a chat completion


def _closed_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def test_ping_closed_port_is_unavailable(tmp_path):
    url = f"http://127.0.0.1:{_closed_port()}/v1"
    client = LLMClient(make_settings(tmp_path, url), None, retry_initial_s=0.01)
    with pytest.raises(LLMUnavailable) as ei:
        client.ping()
    assert url in str(ei.value) and "cannot connect" in str(ei.value)


def test_chat_closed_port_is_unavailable_after_retries(tmp_path):
    url = f"http://127.0.0.1:{_closed_port()}/v1"
    client = LLMClient(make_settings(tmp_path, url, max_retries=1), None, retry_initial_s=0.01)
    with pytest.raises(LLMUnavailable) as ei:
        client.chat(client.request("reader", MSGS))
    assert url in str(ei.value)


# --------------------------------------------------------------------------------------------- parsing
def test_code_blocks_languages():
    text = (
        "Intro.\n```lean\ntheorem a : True := trivial\n```\n"
        "```lean4\ntheorem b : True := trivial\n```\n"
        "```\ntheorem c : True := trivial\n```\n"
        "```python\nprint('not lean')\n```\n"
    )
    assert code_blocks(text) == [
        "theorem a : True := trivial", "theorem b : True := trivial", "theorem c : True := trivial",
    ]
    assert code_blocks("```python\nprint(1)\n```") == []
    assert code_blocks('```json\n{"a": 1}\n```', "json") == ['{"a": 1}']
    assert code_blocks('```json\n{"a": 1}\n```') == []  # a json block is not Lean
    assert code_blocks("```Lean\nexact h\n```") == ["exact h"]


def test_code_blocks_lean_after_a_python_block():
    text = "A sketch:\n```python\nx = 1\n```\nNow the Lean:\n```lean\ntheorem a : True := trivial\n```\n"
    assert code_blocks(text) == ["theorem a : True := trivial"]


def test_one_lean_block_takes_the_last_block():
    assert one_lean_block("```lean\naux\n```\nthen\n```lean\nmain\n```") == "main"


def test_one_lean_block_without_block():
    with pytest.raises(MalformedReply) as ei:
        one_lean_block("I think you should use omega.")
    assert "no ```lean code block" in str(ei.value)


def test_one_lean_block_unclosed_fence_says_truncated():
    with pytest.raises(MalformedReply) as ei:
        one_lean_block("Here:\n```lean\ntheorem t (n : ℕ) : 0 ≤ n := by\n  omeg")
    assert "truncated" in str(ei.value)


def test_json_block():
    assert json_block('Sure.\n```json\n{"statement": "x", "concepts": ["integer"]}\n```\n') == {
        "statement": "x", "concepts": ["integer"],
    }
    assert json_block('{"bare": true}') == {"bare": True}  # no fence: the whole reply
    with pytest.raises(MalformedReply) as ei:
        json_block('```json\n{"statement": "x",}\n```')
    assert "not the JSON" in str(ei.value)
    with pytest.raises(MalformedReply):
        json_block("no json here")
    with pytest.raises(MalformedReply) as ei:
        json_block("```json\n[1, 2]\n```")
    assert "not an object" in str(ei.value)


def test_usage_by_role_unit_and_job(tmp_path):
    from autoform.llm import ChatReply, ChatRequest, Message, usage

    s = Settings(home=tmp_path, llm=LLMConfig(api_key="k", base_url="http://127.0.0.1:9/v1",
                                              prices={"m": (1.0, 2.0)}))
    store = Store(s.db_path)
    client = LLMClient(s, store)
    for role, unit, job, cached in [("prover", 1, 1, False), ("prover", 2, 1, True), ("reader", 1, 2, False)]:
        req = ChatRequest(role=role, messages=[Message(role="user", content=role)], model="m", temperature=0,
                          max_tokens=5)
        client._record(req, ChatReply(text="x", model="m", prompt_tokens=1_000_000, completion_tokens=500_000,
                                      cached=cached), "k", job, unit, 0.0)
    by_role = usage(store, s)
    assert by_role["prover"] == {"calls": 2, "cached": 1, "prompt_tokens": 1_000_000,
                                 "completion_tokens": 500_000, "cost_usd": 2.0}
    assert usage(store, s, by="unit_id")["1"]["cost_usd"] == 4.0
    assert set(usage(store, s, job_id=2)) == {"reader"}
