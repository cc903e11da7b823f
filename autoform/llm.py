"""LLM client: any OpenAI-compatible endpoint through the ``openai`` package.

Retries with exponential backoff and jitter on rate limits, 5xx, timeouts and connection errors (tenacity),
honouring ``Retry-After``; a concurrency limit; a reply cache in the store keyed by model, messages and
parameters (a resumed job never pays twice); token accounting per call, role, unit and job.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import math
import re
import threading
import time
from collections.abc import Callable
from types import ModuleType
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, Field
from tenacity import (
    RetryCallState,
    retry,
    retry_if_exception,
    stop_after_attempt,
    wait_exponential_jitter,
)

from autoform import replies
from autoform.config import Settings
from autoform.errors import MissingError

if TYPE_CHECKING:
    import openai
else:

    class _LazyModule:
        """``openai`` imported on first use: it takes seconds to import, and commands that never call a model
        (``status``, ``units``, ``atlas``) import this module through the job engine."""

        def __init__(self, name: str) -> None:
            self._name = name
            self._mod: ModuleType | None = None

        def __getattr__(self, attr: str) -> Any:
            if self._mod is None:
                self._mod = importlib.import_module(self._name)
            return getattr(self._mod, attr)

    openai = _LazyModule("openai")
from autoform.replies import MalformedReply, Truncated
from autoform.store import Store
from autoform.store.usage import UsageKey


class LLMUnavailable(MissingError):
    """The endpoint cannot be used (no key, unreachable, refuses us); the message names the endpoint."""


class EndpointJunk(MalformedReply):
    """A 200 that is no chat completion (a body that is not JSON, no choices): the endpoint's fault, not the
    model's. Retried like a 5xx; if it persists, it is :class:`LLMUnavailable` (the job stops), never charged to
    the unit."""


class ChatReply(BaseModel):
    text: str
    model: str
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached: bool = False
    finish_reason: str | None = None
    call_id: int = 0
    #: the endpoint's separate reasoning (``reasoning_content`` / ``reasoning``), never parsed as the answer
    reasoning: str = ""
    #: the budget the reply was produced with (a truncated reply is asked again with a larger one)
    max_tokens: int = 0


#: model families that take ``max_completion_tokens`` and refuse ``max_tokens`` (and a temperature other than 1)
_REASONING_FAMILY = re.compile(r"(?:^|/)(?:o\d(?:$|[-.:_])|gpt-5)", re.I)


def uses_completion_tokens(model: str) -> bool:
    """OpenAI's o-series (o1, o3, o4-mini, ...) and GPT-5 take ``max_completion_tokens``, not ``max_tokens``."""
    return bool(_REASONING_FAMILY.search(model))


class Message(BaseModel):
    role: str
    content: str | list[dict[str, object]]  # a list: text and image parts (autoform/ingest/transcribe.py)


class ChatRequest(BaseModel):
    role: str
    messages: list[Message]
    model: str
    temperature: float
    max_tokens: int
    posts_used: list[int] = Field(default_factory=list)

    def cache_key(self) -> str:
        payload = {
            "model": self.model,
            "messages": [m.model_dump() for m in self.messages],
            "temperature": self.temperature,
            "max_tokens": self.max_tokens,
        }
        return hashlib.sha256(json.dumps(payload, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


def _retryable(e: BaseException) -> bool:
    if isinstance(
        e, (openai.RateLimitError, openai.APITimeoutError, openai.APIConnectionError, openai.InternalServerError)
    ):
        return True
    if isinstance(e, openai.APIStatusError):
        return e.status_code >= 500 or e.status_code in (408, 409, 429)
    # a truncated reply is never re-sent unchanged: chat() asks again with a larger budget
    return isinstance(e, MalformedReply) and not isinstance(e, Truncated)


def _unsupported_param(e: openai.BadRequestError) -> str | None:
    """The request parameter an HTTP 400 refuses (OpenAI's ``param``, or named in the message), if it is one we
    can do without: ``max_tokens`` (the o-series and GPT-5 want ``max_completion_tokens``) or ``temperature``."""
    body = e.body if isinstance(e.body, dict) else {}
    err = body.get("error", body) if isinstance(body, dict) else {}
    param = err.get("param") if isinstance(err, dict) else None
    message = f"{e.message} {err.get('message', '') if isinstance(err, dict) else ''}"
    if param in ("max_tokens", "temperature"):
        return str(param)
    if "max_tokens" in message and ("max_completion_tokens" in message or "not supported" in message):
        return "max_tokens"
    if "temperature" in message and ("unsupported" in message.lower() or "not support" in message):
        return "temperature"
    return None


def _retry_after(e: BaseException | None) -> float | None:
    if isinstance(e, openai.APIStatusError) and e.response is not None:
        value = e.response.headers.get("retry-after")
        if value:
            try:
                return min(float(value), 120.0)
            except ValueError:
                return None
    return None


class _Wait:
    """Backoff with jitter, or the server's ``Retry-After`` when it gives one."""

    def __init__(self, initial: float, maximum: float) -> None:
        self._jitter = wait_exponential_jitter(multiplier=initial, max=maximum, jitter=initial)

    def __call__(self, state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        ra = _retry_after(exc)
        return ra if ra is not None else self._jitter(state)


def describe_error(e: BaseException, base_url: str) -> str:
    if isinstance(e, openai.AuthenticationError):
        return f"{base_url}: the endpoint refused the API key (401). Set OPENAI_API_KEY to a valid key."
    if isinstance(e, openai.PermissionDeniedError):
        return f"{base_url}: access denied (403): {e.message}"
    if isinstance(e, openai.NotFoundError):
        return f"{base_url}: not found (404) - is the model name right and the base URL ending in /v1? {e.message}"
    if isinstance(e, openai.APITimeoutError):
        return f"{base_url}: the endpoint did not answer in time"
    if isinstance(e, openai.APIConnectionError):
        return f"{base_url}: cannot connect ({e.__cause__ or e}). Is the server running? Set OPENAI_BASE_URL."
    if isinstance(e, openai.APIStatusError):
        return f"{base_url}: HTTP {e.status_code}: {e.message}"
    return f"{base_url}: {type(e).__name__}: {e}"


class LLMClient:
    def __init__(self, settings: Settings, store: Store | None = None, *, retry_initial_s: float = 1.0) -> None:
        self.settings = settings
        self.cfg = settings.llm
        self.store = store
        self._sem = threading.BoundedSemaphore(max(1, self.cfg.concurrency))
        self._retry_initial = retry_initial_s
        key = settings.api_key
        if not key:
            if self.cfg.is_openai:
                raise LLMUnavailable(
                    f"{self.cfg.base_url}: no API key. Set OPENAI_API_KEY, or point OPENAI_BASE_URL at an "
                    "OpenAI-compatible server (vLLM, Ollama, llama.cpp) that needs none."
                )
            key = "not-needed"
        self.client = openai.OpenAI(base_url=self.cfg.base_url, api_key=key, timeout=self.cfg.timeout_s, max_retries=0)
        self._lock = threading.Lock()
        #: per model, what an HTTP 400 taught us: {"completion_tokens": True, "no_temperature": True}
        self._learned: dict[str, dict[str, bool]] = {}
        #: per role, the budget a truncated reply escalated to: later requests of the role start there
        self._floor: dict[str, int] = {}

    def ping(self) -> list[str]:
        """The models the endpoint lists; raises LLMUnavailable with the reason."""
        try:
            return [m.id for m in self.client.with_options(timeout=min(self.cfg.timeout_s, 15.0)).models.list()]
        except openai.OpenAIError as e:
            raise LLMUnavailable(describe_error(e, self.cfg.base_url)) from e

    def embed(self, texts: list[str], model: str) -> list[list[float]]:
        """Embeddings from the endpoint's /embeddings, cached in the store by model and text."""
        keys = [hashlib.sha256(f"{model}\0{t}".encode()).hexdigest() for t in texts]
        have: dict[str, list[float]] = self.store.embeddings(keys) if self.store is not None else {}
        missing = [(k, t) for k, t in zip(keys, texts, strict=True) if k not in have]
        if missing:
            fresh = dict(zip((k for k, _ in missing), self._embed_remote([t for _, t in missing], model), strict=True))
            have.update(fresh)
            if self.store is not None:
                self.store.store_embeddings(model, fresh)
        return [have[k] for k in keys]

    def _embed_remote(self, texts: list[str], model: str) -> list[list[float]]:
        """The endpoint's embeddings of the texts, in their order."""
        try:
            resp = self.client.embeddings.create(model=model, input=[t or " " for t in texts])
        except openai.OpenAIError as e:
            raise LLMUnavailable(describe_error(e, self.cfg.base_url)) from e
        vectors = [list(d.embedding) for d in sorted(resp.data, key=lambda d: d.index)]
        if len(vectors) != len(texts):
            raise MalformedReply(f"{self.cfg.base_url}: {len(vectors)} embeddings for {len(texts)} texts")
        return vectors

    def embedding_relevance(self, model: str) -> Callable[[str, list[str]], list[float]]:
        """Cosine similarity to the goal (negative similarities count as 0)."""

        def relevance(goal: str, texts: list[str]) -> list[float]:
            vecs = self.embed([goal, *texts], model)
            g, gn = vecs[0], math.sqrt(sum(x * x for x in vecs[0])) or 1.0
            out = []
            for v in vecs[1:]:
                vn = math.sqrt(sum(x * x for x in v)) or 1.0
                out.append(max(0.0, sum(a * b for a, b in zip(g, v, strict=False)) / (gn * vn)))
            return out

        return relevance

    def request(self, role: str, messages: list[Message], posts_used: list[int] | None = None) -> ChatRequest:
        return ChatRequest(
            role=role,
            messages=messages,
            model=self.cfg.model_for(role),
            temperature=self.cfg.temperature_for(role),
            max_tokens=self.cfg.max_tokens_for(role),
            posts_used=posts_used or [],
        )

    def chat(self, req: ChatRequest, *, job_id: int | None = None, unit_id: int | None = None) -> ChatReply:
        key = req.cache_key()
        hit = self.store.cached_response(key) if self.store is not None else None
        if hit is not None:
            reply = ChatReply(text=hit[0], model=hit[1], cached=True)
            reply.call_id = self._record(req, reply, key, job_id, unit_id, 0.0)
            return reply
        cap = self.cfg.max_tokens_cap_for(req.role)
        with self._lock:
            budget = min(cap, max(req.max_tokens, self._floor.get(req.role, 0)))
        escalations = 0
        while True:
            t0 = time.monotonic()
            reply = self._call(req if budget == req.max_tokens else req.model_copy(update={"max_tokens": budget}))
            why = _truncation(reply)
            if why is None:
                reply.call_id = self._record(req, reply, key, job_id, unit_id, time.monotonic() - t0)
                return reply
            # paid for, recorded for the accounts, never used nor served from the cache
            self._record(req, reply, f"{key}:truncated", job_id, unit_id, time.monotonic() - t0)
            if budget >= cap or escalations >= self.cfg.length_retries:
                raise Truncated(
                    f"{self.cfg.base_url}: the reply was cut off at {budget} output tokens ({why}); "
                    f"the budget of role {req.role!r} is at its cap, {cap} ([llm] max_tokens_cap)"
                    if budget >= cap
                    else f"{self.cfg.base_url}: the reply was cut off at {budget} output tokens ({why}), "
                    f"{escalations + 1} time(s)"
                )
            escalations += 1
            budget = min(cap, budget * 2)
            with self._lock:
                self._floor[req.role] = max(self._floor.get(req.role, 0), budget)

    def _params(self, req: ChatRequest, budget: int) -> dict[str, Any]:
        """The request's parameters for this endpoint family: ``max_completion_tokens`` and no temperature
        for the o-series and GPT-5 (by name, by configuration, or learned from an HTTP 400), else
        ``max_tokens``."""
        learned = self._learned.get(req.model, {})
        mode = self.cfg.token_param
        completion = mode == "max_completion_tokens" or (
            mode == "auto" and (uses_completion_tokens(req.model) or learned.get("completion_tokens", False))
        )
        params: dict[str, Any] = {"max_completion_tokens" if completion else "max_tokens": budget}
        no_temperature = learned.get("no_temperature", mode == "auto" and uses_completion_tokens(req.model))
        if not no_temperature:
            params["temperature"] = req.temperature
        return params

    def _call(self, req: ChatRequest) -> ChatReply:
        budget = req.max_tokens

        @retry(
            retry=retry_if_exception(_retryable),
            wait=_Wait(self._retry_initial, 60.0),
            stop=stop_after_attempt(max(1, self.cfg.max_retries + 1)),
            reraise=True,
        )
        def once() -> ChatReply:
            with self._sem:
                try:
                    resp = self.client.chat.completions.create(
                        model=req.model,
                        messages=[m.model_dump() for m in req.messages],  # type: ignore[misc]
                        **self._params(req, budget),
                    )
                except ValueError as e:  # a 200 whose body is not JSON (the client raises JSONDecodeError)
                    raise EndpointJunk(f"{self.cfg.base_url}: the reply body is not JSON ({e})") from e
            if not getattr(resp, "choices", None) or resp.choices[0].message is None:
                raise EndpointJunk(f"{self.cfg.base_url}: a reply with no choices")
            choice = resp.choices[0]
            text = choice.message.content or ""
            extra = getattr(choice.message, "model_extra", None) or {}
            reasoning = extra.get("reasoning_content") or extra.get("reasoning") or ""
            usage = resp.usage
            reply = ChatReply(
                text=text,
                model=resp.model or req.model,
                finish_reason=choice.finish_reason,
                prompt_tokens=usage.prompt_tokens if usage else 0,
                completion_tokens=usage.completion_tokens if usage else 0,
                reasoning=reasoning if isinstance(reasoning, str) else "",
                max_tokens=budget,
            )
            if not text.strip() and _truncation(reply) is None:
                raise MalformedReply(f"{self.cfg.base_url}: an empty reply")
            return reply

        for _ in range(3):  # at most one fallback per refused parameter
            try:
                return once()
            except EndpointJunk as e:  # the endpoint, not the model: stop the job as for a 5xx
                raise LLMUnavailable(
                    f"{e}; {self.cfg.max_retries + 1} tries. Is the base URL an OpenAI-compatible "
                    "endpoint (ending in /v1)?"
                ) from e
            except MalformedReply:
                raise
            except openai.BadRequestError as e:
                param = _unsupported_param(e)
                learned = self._learned.setdefault(req.model, {})
                key = {"max_tokens": "completion_tokens", "temperature": "no_temperature"}.get(param or "")
                if key is None or learned.get(key):
                    raise LLMUnavailable(describe_error(e, self.cfg.base_url)) from e
                with self._lock:
                    learned[key] = True  # this model refuses the parameter: ask again without it, and remember
            except openai.OpenAIError as e:
                raise LLMUnavailable(describe_error(e, self.cfg.base_url)) from e
        raise LLMUnavailable(f"{self.cfg.base_url}: the endpoint refuses every form of the request")

    def _record(
        self, req: ChatRequest, reply: ChatReply, key: str, job_id: int | None, unit_id: int | None, elapsed: float
    ) -> int:
        if self.store is None:
            return 0
        return self.store.record_llm_call(
            cache_key=key,
            job_id=job_id,
            unit_id=unit_id,
            role=req.role,
            model=reply.model,
            request=req.model_dump_json(),
            response=reply.text,
            prompt_tokens=reply.prompt_tokens,
            completion_tokens=reply.completion_tokens,
            cached=reply.cached,
            posts_used=req.posts_used,
            elapsed_s=elapsed,
        )


def _truncation(reply: ChatReply) -> str | None:
    """Why a reply is cut off, or None: ``finish_reason`` ``length``; or, where a proxy sends no finish reason,
    a reply visibly cut (inside its reasoning or a code block)."""
    if reply.finish_reason == "length":
        return "finish_reason length"
    if reply.finish_reason is None:
        why = replies.looks_cut(reply.text)
        return f"no finish reason and {why}" if why else None
    return None


# any fenced block, whatever its info string, so that a ```python block is consumed whole and its closing
# fence is never read as the opening of an unlabelled block
_BLOCK_RE = re.compile(r"```[ \t]*([^\n`]*)\n(.*?)```", re.S)


def code_blocks(text: str, lang: str = "lean") -> list[str]:
    """Fenced code blocks of the given language (``lean``/``lean4``; an unlabelled block counts as Lean)."""
    out = []
    for m in _BLOCK_RE.finditer(text):
        tag = (m.group(1) or "").strip().lower()
        if (lang == "lean" and tag in ("lean", "lean4", "")) or tag == lang:
            out.append(m.group(2).strip("\n"))
    return out


def one_lean_block(text: str) -> str:
    """The last Lean code block of the reply's final answer (see :func:`autoform.replies.lean_blocks`)."""
    blocks = replies.lean_blocks(text)
    if not blocks:
        raise replies.no_lean_block(text)
    return blocks[-1]


def json_block(text: str) -> dict[str, Any]:
    """The JSON object of the reply's final answer (see :func:`autoform.replies.parse_json`)."""
    return replies.parse_json(text)


def price(settings: Settings, model: str, prompt_tokens: int, completion_tokens: int) -> float:
    """USD for the tokens, from ``[llm] prices`` (USD per million prompt / completion tokens)."""
    p = settings.llm.prices.get(model)
    return (prompt_tokens * p[0] + completion_tokens * p[1]) / 1e6 if p else 0.0


def usage(
    store: Store, settings: Settings, *, job_id: int | None = None, by: UsageKey = "role"
) -> dict[str, dict[str, float]]:
    """Calls, cache hits, tokens and cost grouped by ``role``, ``unit_id`` or ``job_id`` (cached replies cost
    nothing)."""
    out: dict[str, dict] = {}
    for row in store.usage_by(by, job_id):
        d = out.setdefault(
            row.key, {"calls": 0, "cached": 0, "prompt_tokens": 0, "completion_tokens": 0, "cost_usd": 0.0}
        )
        d["calls"] += row.calls
        d["cached"] += row.cached
        d["prompt_tokens"] += row.prompt_tokens
        d["completion_tokens"] += row.completion_tokens
        d["cost_usd"] = round(d["cost_usd"] + price(settings, row.model, row.prompt_tokens, row.completion_tokens), 6)
    return out
