"""The rows of the store as typed models: books, units, posts, attempts, Atlas entries, jobs."""

from __future__ import annotations

import json
import sqlite3
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, Field


class Book(BaseModel):
    id: int
    slug: str
    title: str
    source_path: str
    source_kind: str
    ingested_at: float
    warnings: list[str] = Field(default_factory=list)


class UnitStatus(StrEnum):
    """Where a unit stands. A ``StrEnum``: stored as its text, equal to it (``UnitStatus.PROVED == "proved"``)."""

    PENDING = "pending"  # not yet worked on (or re-opened)
    WORKING = "working"  # a job has it
    PROVED = "proved"  # statement and proof admitted
    DEFINED = "defined"  # a definition admitted
    STATED = "stated"  # statement admitted and locked; no proof admitted
    FAILED = "failed"  # the job gave up on it
    SKIPPED = "skipped"  # not attempted (a dependency failed, or out of budget)

    @property
    def admitted(self) -> bool:
        """In the Atlas: Lean admitted it (a proof, a definition, or a locked statement)."""
        return self in ADMITTED

    @property
    def terminal(self) -> bool:
        """A job has nothing more to do on it."""
        return self in TERMINAL


#: the statuses of units that Lean admitted into the Atlas
ADMITTED: frozenset[UnitStatus] = frozenset({UnitStatus.PROVED, UnitStatus.DEFINED, UnitStatus.STATED})
#: the statuses a job does not work on again
TERMINAL: frozenset[UnitStatus] = ADMITTED | {UnitStatus.FAILED, UnitStatus.SKIPPED}


class JobStatus(StrEnum):
    """Where a job stands. A ``StrEnum``: stored as its text, equal to it (``JobStatus.DONE == "done"``)."""

    RUNNING = "running"  # a process works on it (or crashed while it did: resumed like an interrupted one)
    INTERRUPTED = "interrupted"  # stopped (Ctrl-C, budget, a fault): the next run of its book resumes it
    DONE = "done"  # every unit it could work on is concluded
    FAILED = "failed"  # Lean answered nothing: the next run starts a new job


class UnitContent(BaseModel):
    """What the book says of a unit: the fields a reader fills in and the store keeps."""

    kind: str
    number: str = ""
    title: str = ""
    label: str = ""
    statement: str
    statement_raw: str = ""
    proof: str = ""
    chapter: str = ""
    section: str = ""
    source: str = ""
    refs: list[str] = Field(default_factory=list)
    #: what the reader could not keep of the statement, for a person and the drafter to check against the book
    #: (a PDF's math built up over lines, a figure left out)
    flags: list[str] = Field(default_factory=list)

    @property
    def display(self) -> str:
        name = f"{self.kind.capitalize()} {self.number}".strip()
        return f"{name} ({self.title})" if self.title else name

    @property
    def location(self) -> str:
        return " / ".join(p for p in (self.chapter, self.section) if p)


class Unit(UnitContent):
    """A unit as stored: its content, its place in the book and its status."""

    id: int
    book_id: int
    ident: str
    seq: int
    present: bool = True
    status: UnitStatus = UnitStatus.PENDING


class Post(BaseModel):
    id: int
    book_id: int
    unit_id: int | None
    job_id: int | None
    round: int
    author: str
    kind: str
    body: str
    data: dict[str, Any] = Field(default_factory=dict)
    refs: list[int] = Field(default_factory=list)
    pinned: bool = False
    created_at: float


class Attempt(BaseModel):
    id: int
    job_id: int
    unit_id: int
    n: int
    author: str
    stage: str
    lean_code: str
    admitted: bool
    reasons: list[dict[str, Any]] = Field(default_factory=list)
    messages: list[dict[str, Any]] = Field(default_factory=list)
    axioms: list[str] | None = None
    toolchain: str = ""
    elapsed_s: float = 0.0
    created_at: float
    elaborated_type: str = ""  # a statement attempt that elaborated: the type Lean gave it
    superseded: bool = False  # made for a statement that re-ingest changed: history only


class AtlasEntry(BaseModel):
    id: int
    unit_id: int
    book_id: int
    decl_name: str
    status: str
    statement_lean: str
    lean_code: str
    attempt_id: int | None
    job_id: int | None
    model: str = ""
    attempts: int = 0
    created_at: float


class Job(BaseModel):
    id: int
    book_id: int
    status: JobStatus
    params: dict[str, Any] = Field(default_factory=dict)
    started_at: float
    finished_at: float | None = None
    pid: int | None = None
    message: str = ""


_JSON_COLUMNS = {"warnings", "refs", "flags", "data", "reasons", "messages", "axioms", "params", "posts_used"}


def _row(model: type[BaseModel], row: sqlite3.Row) -> Any:
    d = dict(row)
    for k in _JSON_COLUMNS & d.keys():
        if d[k] is not None:
            d[k] = json.loads(d[k])
    return model.model_validate(d)
