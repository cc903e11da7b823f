"""What every executor shares: the per-unit guard (which errors stop the job, which fail the unit), the
per-unit token cap, and the executor interface the scheduler drives.

An executor runs :meth:`autoform.pipeline.UnitPipeline.work_unit` for the units the scheduler submits and
reports one :class:`UnitOutcome` per unit. It never decides what runs next; the scheduler does.
"""

from __future__ import annotations

import contextlib
import errno
import sqlite3
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import networkx as nx

from autoform.blackboard import Blackboard
from autoform.config import Settings
from autoform.lean.oracle import LeanCheck, Oracle
from autoform.llm import ChatReply, ChatRequest, LLMClient, LLMUnavailable
from autoform.store import Book, Job, Store, Unit, UnitStatus

EventFn = Callable[[str, Unit, str], None]


class ChatClient(Protocol):
    """What the per-unit token cap wraps: an LLM client's chat call."""

    def chat(self, req: ChatRequest, *, job_id: int | None = None, unit_id: int | None = None) -> ChatReply: ...


class UnitWork(Protocol):
    """What an executor runs for each unit (the :class:`~autoform.pipeline.UnitPipeline`): its work on the
    unit, the store it writes, and the board where a unit's failure is posted."""

    store: Store
    board: Blackboard

    def work_unit(self, unit: Unit) -> None: ...


class UnitTokenCap(Exception):
    """The unit has used its token allowance for this job; it is failed, the job goes on."""


class StepLost(Exception):
    """The step's transaction was taken from this worker (it went silent past the store server's lease and
    was rolled back): the unit goes back to the queue and is redone; nothing was half-written."""


class StoreWriteFailed(Exception):
    """The store cannot be written (disk full, I/O error): the job stops; nothing half-written remains."""


def store_failure(e: BaseException) -> str | None:
    """A clear message when ``e`` (or what it was raised while handling: a failed ROLLBACK hides the write
    that failed) means the store or the disk under atlas/ cannot be written; else None."""
    seen: set[int] = set()
    cur: BaseException | None = e
    while cur is not None and id(cur) not in seen:
        seen.add(id(cur))
        why = _store_failure_one(cur)
        if why is not None:
            return why
        cur = cur.__cause__ or cur.__context__
    return None


#: what SQLite says when a write fails (words in its message), and what the job tells the user
_SQLITE_WRITE_FAILURES: tuple[tuple[tuple[str, ...], str], ...] = (
    (
        ("full",),
        "the store cannot be written ({text}). Nothing was half-written: every step is one "
        "transaction. Free disk space and run the same command again to resume.",
    ),
    (
        ("readonly database", "unable to open", "read-only"),
        "the store cannot be written ({text}): its file or directory is read-only. Nothing was "
        "half-written. Make it writable and run the same command again to resume.",
    ),
    (
        ("disk I/O error",),
        "the store cannot be written ({text}): the disk failed a write (full, or failing). Nothing "
        "was half-written. Check the disk and run the same command again to resume.",
    ),
)
#: what SQLite says of a damaged file
_SQLITE_DAMAGE = ("malformed", "not a database", "file is encrypted")


def _store_failure_one(e: BaseException) -> str | None:
    if isinstance(e, StoreWriteFailed):
        return str(e)
    if isinstance(e, sqlite3.DatabaseError):
        return _sqlite_failure(e)
    if isinstance(e, OSError):
        return _disk_failure(e)
    return None


def _sqlite_failure(e: sqlite3.DatabaseError) -> str | None:
    text = str(e).splitlines()[0] if str(e) else type(e).__name__
    if isinstance(e, sqlite3.OperationalError):
        for words, message in _SQLITE_WRITE_FAILURES:
            if any(w in text for w in words):
                return message.format(text=text)
        return None
    if any(w in text for w in _SQLITE_DAMAGE):
        return (
            f"the store is damaged ({text}); the job stopped without writing more. Restore the last backup "
            "with `autoform restore FILE` (made by `autoform backup`)."
        )
    return None


def _disk_failure(e: OSError) -> str | None:
    where = e.filename or "a file"
    if e.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
        return (
            f"cannot write {where}: {e.strerror}. Free disk space and run the "
            "same command again to resume (atlas files are rewritten from the store)."
        )
    if e.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
        cause = "a read-only file system" if e.errno == errno.EROFS else "no permission to write"
        return (
            f"cannot write {where}: {e.strerror} ({cause}). Make it writable and run the same command again "
            "to resume (atlas files are rewritten from the store)."
        )
    return None


class LeanUnanswering(Exception):
    """Lean gave no verdict (crash, garbage, timeout) on the last N checks in a row: the job stops, the unit
    goes back to pending."""


class OracleBreaker:
    """A circuit breaker around the job's oracle: after ``limit`` consecutive checks that Lean did not answer
    (``LeanCheck.failure``: it died, printed garbage or hung), that check and every later one raise
    :class:`LeanUnanswering` with the last failure's cause instead of returning a rejection, so a broken Lean
    stops the job rather than failing the whole book. Any answered check closes the breaker's count again."""

    def __init__(self, inner: Oracle, limit: int) -> None:
        self.inner, self.limit = inner, limit
        self._lock = threading.Lock()
        self.streak = 0
        self.tripped: str | None = None

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def check(self, code: str, **kwargs: Any) -> LeanCheck:
        if self.tripped:
            raise LeanUnanswering(self.tripped)
        result = self.inner.check(code, **kwargs)
        with self._lock:
            if result.failure is None:
                self.streak = 0
                return result
            self.streak += 1
            if self.streak >= self.limit and not self.tripped:
                self.tripped = self._trip_message(result.failure)
            if self.tripped:
                raise LeanUnanswering(self.tripped)
        return result

    def _trip_message(self, failure: str) -> str:
        cause = " ".join(str(failure).split())[:300]
        backend = getattr(self.inner, "backend", "") or "Lean"  # a stand-in oracle may not name its backend
        return (
            f"Lean ({backend}) gave no verdict on {self.streak} checks in a row; the last: "
            f"{cause}. The job stopped with its units pending; `autoform doctor` checks Lean "
            "([job] lean_failures_to_stop sets how many failures stop a job)"
        )


@dataclass
class UnitOutcome:
    """What became of one submitted unit. ``fatal`` set: the job must stop (the unit is left pending)."""

    unit_id: int
    fatal: str | None = None
    fatal_kind: str = ""  # "llm" | "lean" | "store" | "worker"
    retry: bool = False  # the unit did not conclude (a step was lost): the executor submits it again
    events: list[tuple[str, int, str]] = field(default_factory=list)  # (kind, unit id, detail), remote only


class CappedLLM:
    """An :class:`~autoform.llm.LLMClient` with a per-unit token allowance for one job.

    Before each chat call of a unit, the tokens that unit has used in this job (uncached calls, counted from
    ``llm_calls`` once, then in memory) are compared with the cap; at or past it the call is refused with
    :class:`UnitTokenCap`, which fails the unit. A unit can thus exceed its cap by at most one reply.
    """

    def __init__(self, inner: ChatClient, store: Store, job_id: int, cap: int) -> None:
        self.inner, self.store, self.job_id, self.cap = inner, store, job_id, cap
        self._used: dict[int, int] = {}
        self._lock = threading.Lock()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def used(self, unit_id: int) -> int:
        with self._lock:
            if unit_id not in self._used:
                self._used[unit_id] = self.store.unit_job_tokens(self.job_id, unit_id)
            return self._used[unit_id]

    def chat(self, req: ChatRequest, *, job_id: int | None = None, unit_id: int | None = None) -> ChatReply:
        if unit_id is not None and self.used(unit_id) >= self.cap:
            raise UnitTokenCap(
                f"token cap reached: the unit used {self.used(unit_id)} tokens in this job "
                f"(cap {self.cap}, --unit-tokens)"
            )
        reply: ChatReply = self.inner.chat(req, job_id=job_id, unit_id=unit_id)
        if unit_id is not None and not reply.cached:
            with self._lock:
                self._used[unit_id] = self._used.get(unit_id, 0) + reply.prompt_tokens + reply.completion_tokens
        return reply


def run_unit(pipeline: UnitWork, unit: Unit, on_event: EventFn, *, stop: threading.Event) -> UnitOutcome:
    """Work one unit through the pipeline. An unusable LLM endpoint or an unwritable store stops the job (the
    unit goes back to pending); a token cap or a bug fails only this unit, with the reason on the board."""
    if stop.is_set():
        return UnitOutcome(unit.id)
    try:
        pipeline.work_unit(unit)
    except LLMUnavailable as e:
        _reset(pipeline.store, unit.id)
        return UnitOutcome(unit.id, fatal=str(e), fatal_kind="llm")
    except LeanUnanswering as e:
        _reset(pipeline.store, unit.id)
        return UnitOutcome(unit.id, fatal=str(e), fatal_kind="lean")
    except StepLost:
        _reset(pipeline.store, unit.id)
        return UnitOutcome(unit.id, retry=True)
    except UnitTokenCap as e:
        _fail(pipeline, unit, str(e), on_event)
    except Exception as e:  # a bug must not lose the job: record it on the unit and go on
        why = store_failure(e)
        if why is not None:
            _reset(pipeline.store, unit.id)
            return UnitOutcome(unit.id, fatal=why, fatal_kind="store")
        _fail(pipeline, unit, f"internal error: {type(e).__name__}: {e}", on_event)
    return UnitOutcome(unit.id)


def _reset(store: Store, unit_id: int) -> None:
    """The unit is pending again (it did not conclude)."""
    with contextlib.suppress(Exception):  # the store may be what failed; 'working' is reset at the next start
        store.set_unit_status(unit_id, UnitStatus.PENDING)


def _fail(pipeline: UnitWork, unit: Unit, why: str, on_event: EventFn) -> None:
    try:
        with pipeline.store.tx():
            pipeline.board.post("job", "critique", why, unit_id=unit.id)
            pipeline.store.set_unit_status(unit.id, UnitStatus.FAILED)
    except Exception:
        _reset(pipeline.store, unit.id)
        raise
    on_event(UnitStatus.FAILED, unit, why)


@dataclass
class ExecContext:
    """Everything an executor needs to build unit pipelines for one job."""

    settings: Settings
    store: Store
    book: Book
    job: Job
    graph: nx.DiGraph
    max_attempts: int
    namespace: str
    stop: threading.Event
    on_event: EventFn
    slots: int
    unit_tokens: int | None = None
    oracle: Oracle | None = None  # the head's oracle (local executor)
    llm: LLMClient | None = None  # the head's LLM client (local executor)


class Executor(Protocol):
    """Runs units; the scheduler decides which and when."""

    slots: int

    def connect(self) -> None:
        """Reach what the executor runs on (a Ray cluster), before anything is written; raises
        :class:`~autoform.executors.ExecutorUnavailable` with the reason."""
        ...

    def preflight(self, settings: Settings, store: Store) -> list[str]:
        """Make sure where units run can check them (on Ray: every node's toolchain and Lean), before the job
        row is written; returns the problems that stop the job (empty: ready)."""
        ...

    def start(self, ctx: ExecContext) -> None: ...

    def submit(self, unit: Unit) -> None: ...

    def completed(self, timeout: float) -> list[UnitOutcome]:
        """Outcomes of finished units: waits up to ``timeout`` seconds for the first, then takes all ready."""
        ...

    def request_stop(self) -> None: ...

    def close(self, *, wait: bool = True) -> None: ...
