"""autoform.llm.LLMClient through the real ``openai`` client against tests/fake_llm.py (no network).

Covers: a normal chat and its token accounting, the reply cache in ``llm_calls``, retries (5xx, 429 with
Retry-After, timeouts, empty replies), truncated replies asked again with a larger budget (never unchanged), the
token parameter of each endpoint family, the errors a user sees (LLMUnavailable naming the endpoint
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
    Truncated,
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
    assert body["temperature"] == 0.2 and body["max_tokens"] == 16384  # the defaults: a prover's budget is large
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
    settings = make_settings(
        tmp_path, srv.base_url, roles={"prover": RoleLLM(model="big", temperature=0.7, max_tokens=99)}
    )
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
    client = LLMClient(make_settings(tmp_path, srv.base_url, timeout_s=0.2, max_retries=1), None, retry_initial_s=0.01)
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


@pytest.mark.parametrize("bad", [Reply(text=""), Reply(text="   \n  ")], ids=["empty", "blank"])
def test_empty_reply_is_retried(client, srv, store, bad):
    srv.push(bad, Reply(text="a full answer"))
    reply = client.chat(client.request("reader", MSGS))
    assert reply.text == "a full answer" and len(srv.requests) == 2
    assert [r["response"] for r in calls(store)] == ["a full answer"]  # the bad reply is not cached


def test_persistent_empty_reply_raises_malformed(client, srv, store):
    srv.push(*[Reply(text="")] * 10)
    with pytest.raises(MalformedReply) as ei:
        client.chat(client.request("reader", MSGS))
    assert "empty" in str(ei.value) and srv.base_url in str(ei.value)
    assert len(srv.requests) == 4
    assert calls(store) == []


# ------------------------------------------------------------------------------------------- truncation
CUT = Reply(text="```lean\ntheorem t : Tr", finish_reason="length")


def test_truncated_reply_is_asked_again_with_a_larger_budget_never_unchanged(client, srv, store):
    srv.push(CUT, Reply(text="a full answer"))
    reply = client.chat(client.request("reader", MSGS))
    assert reply.text == "a full answer"
    first, second = srv.requests
    assert (first["max_tokens"], second["max_tokens"]) == (2048, 4096)  # not re-sent unchanged
    assert first["messages"] == second["messages"]
    rows = calls(store)
    assert [r["response"] for r in rows] == [CUT.text, "a full answer"]  # both paid for and counted
    assert rows[0]["cache_key"].endswith(":truncated") and rows[1]["id"] == reply.call_id
    # the cut reply is never served from the cache; the role's next request starts at the larger budget
    srv.push(Reply(text="another"))
    again = client.chat(client.request("reader", [*MSGS, Message(role="user", content="more")]))
    assert again.text == "another" and srv.requests[-1]["max_tokens"] == 4096


def test_truncation_stops_at_the_role_cap(tmp_path, srv, store):
    settings = make_settings(tmp_path, srv.base_url, max_tokens=1000, max_tokens_cap=3000, length_retries=5)
    client = LLMClient(settings, store, retry_initial_s=0.01)
    srv.push(*[CUT] * 10)
    with pytest.raises(Truncated) as ei:
        client.chat(client.request("critic", MSGS))
    assert [r["max_tokens"] for r in srv.requests] == [1000, 2000, 3000]
    assert "cap" in str(ei.value) and "3000" in str(ei.value)
    assert len(calls(store)) == 3 and all(r["cache_key"].endswith(":truncated") for r in calls(store))


def test_truncation_gives_up_after_length_retries(tmp_path, srv, store):
    settings = make_settings(tmp_path, srv.base_url, length_retries=1)
    client = LLMClient(settings, store, retry_initial_s=0.01)
    srv.push(*[CUT] * 10)
    with pytest.raises(Truncated):
        client.chat(client.request("prover", MSGS))
    assert [r["max_tokens"] for r in srv.requests] == [16384, 32768]


@pytest.mark.parametrize(
    "text, cut",
    [
        ("<think>Let me consider the parity of m and n. First", True),
        ("Here is the proof:\n```lean\nobtain ⟨a, ha⟩ := hm\nobtain", True),
        ("```lean\nomega\n```", False),
    ],
    ids=["inside-think", "inside-block", "whole"],
)
def test_null_finish_reason_and_visibly_cut_is_truncated(client, srv, store, text, cut):
    srv.push(Reply(text=text, finish_reason=None), Reply(text="```lean\nsimp\n```"))
    reply = client.chat(client.request("reader", MSGS))
    assert reply.text == ("```lean\nsimp\n```" if cut else text)
    assert len(srv.requests) == (2 if cut else 1)


def test_budget_honoured_by_the_server_is_escalated(tmp_path, store):
    """A server that stops at the budget: a 3,000-token answer against a 2,048-token reader budget."""
    long = "x" * 12000
    with FakeLLM(lambda body: Reply(text=long), honour_max_tokens=True) as s:
        client = LLMClient(make_settings(tmp_path, s.base_url), store, retry_initial_s=0.01)
        reply = client.chat(client.request("reader", MSGS))
        assert reply.text == long and [r["max_tokens"] for r in s.requests] == [2048, 4096]


def test_reasoning_content_is_kept_apart(client, srv):
    srv.push(Reply(text="```lean\nomega\n```", reasoning="We need n ≥ 0; omega does it."))
    reply = client.chat(client.request("prover", MSGS))
    assert reply.text == "```lean\nomega\n```" and reply.reasoning == "We need n ≥ 0; omega does it."


# ------------------------------------------------------------------------------ endpoint families
@pytest.mark.parametrize("model", ["o1", "o3-mini", "o4-mini", "gpt-5", "gpt-5-mini", "openai/o3"])
def test_o_series_and_gpt5_get_max_completion_tokens(tmp_path, srv, store, model):
    client = LLMClient(make_settings(tmp_path, srv.base_url, model=model), store, retry_initial_s=0.01)
    reply = client.chat(client.request("prover", MSGS))
    assert reply.text == "default reply"
    (body,) = srv.requests
    assert body["max_completion_tokens"] == 16384 and "max_tokens" not in body and "temperature" not in body


def test_an_unknown_name_refused_with_400_falls_back_once_and_remembers(tmp_path, srv, store):
    """A deployment name that hides an o-series model: the real 400 body, then max_completion_tokens."""
    client = LLMClient(make_settings(tmp_path, srv.base_url, model="my-deployment"), store, retry_initial_s=0.01)
    srv.push(
        Reply(
            status=400,
            body=json.dumps(
                {
                    "error": {
                        "message": "Unsupported parameter: 'max_tokens' is not supported with this model. Use "
                        "'max_completion_tokens' instead.",
                        "type": "invalid_request_error",
                        "param": "max_tokens",
                        "code": "unsupported_parameter",
                    }
                }
            ),
        )
    )
    assert client.chat(client.request("reader", MSGS)).text == "default reply"
    first, second = srv.requests
    assert first["max_tokens"] == 2048 and second["max_completion_tokens"] == 2048 and "max_tokens" not in second
    client.chat(client.request("critic", [*MSGS, Message(role="user", content="and?")]))
    assert "max_completion_tokens" in srv.requests[-1] and len(srv.requests) == 3  # remembered: no second 400


def test_fake_server_refuses_max_tokens_for_o_series_like_the_api(srv):
    import openai

    c = openai.OpenAI(base_url=srv.base_url, api_key="x", max_retries=0)
    with pytest.raises(openai.BadRequestError) as ei:
        c.chat.completions.create(model="o3", messages=[{"role": "user", "content": "hi"}], max_tokens=10)
    assert ei.value.body["param"] == "max_tokens" and "max_completion_tokens" in ei.value.message


def test_token_param_can_be_forced(tmp_path, srv, store):
    client = LLMClient(
        make_settings(tmp_path, srv.base_url, token_param="max_completion_tokens"), store, retry_initial_s=0.01
    )
    client.chat(client.request("reader", MSGS))
    (body,) = srv.requests
    assert body["max_completion_tokens"] == 2048 and body["temperature"] == 0.2


def test_other_400_is_not_a_fallback(client, srv):
    srv.push(*[Reply(status=400, text="Invalid 'messages[1].content'")] * 3)
    with pytest.raises(LLMUnavailable):
        client.chat(client.request("reader", MSGS))
    assert len(srv.requests) == 1


def test_reply_without_choices_is_malformed(client, srv):
    """A JSON object that is not a chat completion: retried, then the endpoint is unusable (LLMUnavailable: the
    job stops, the unit is not charged; issue 14 point 8)."""
    srv.push(*[Reply(body="{}")] * 10)
    with pytest.raises(LLMUnavailable) as ei:
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

    Retried, then LLMUnavailable after max_retries+1 requests (the endpoint's fault, not the unit's: issue 14
    point 8), never the client library's JSONDecodeError / AttributeError."""
    headers = {"Content-Type": content_type} if content_type else {}
    srv.push(*[Reply(body=body, headers=headers)] * 10)
    with pytest.raises(LLMUnavailable) as ei:
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
        "theorem a : True := trivial",
        "theorem b : True := trivial",
        "theorem c : True := trivial",
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
        "statement": "x",
        "concepts": ["integer"],
    }
    assert json_block('{"bare": true}') == {"bare": True}  # no fence: the whole reply
    assert json_block('```json\n{"statement": "x",}\n```') == {"statement": "x"}  # near-JSON is repaired
    with pytest.raises(MalformedReply):
        json_block("no json here")
    with pytest.raises(MalformedReply) as ei:
        json_block("```json\n[1, 2]\n```")
    assert "not an object" in str(ei.value)


def test_usage_by_role_unit_and_job(tmp_path):
    from autoform.llm import ChatReply, ChatRequest, Message, usage

    s = Settings(home=tmp_path, llm=LLMConfig(api_key="k", base_url="http://127.0.0.1:9/v1", prices={"m": (1.0, 2.0)}))
    store = Store(s.db_path)
    client = LLMClient(s, store)
    for role, unit, job, cached in [("prover", 1, 1, False), ("prover", 2, 1, True), ("reader", 1, 2, False)]:
        req = ChatRequest(
            role=role, messages=[Message(role="user", content=role)], model="m", temperature=0, max_tokens=5
        )
        client._record(
            req,
            ChatReply(text="x", model="m", prompt_tokens=1_000_000, completion_tokens=500_000, cached=cached),
            "k",
            job,
            unit,
            0.0,
        )
    by_role = usage(store, s)
    assert by_role["prover"] == {
        "calls": 2,
        "cached": 1,
        "prompt_tokens": 1_000_000,
        "completion_tokens": 500_000,
        "cost_usd": 2.0,
    }
    assert usage(store, s, by="unit_id")["1"]["cost_usd"] == 4.0
    assert set(usage(store, s, job_id=2)) == {"reader"}
