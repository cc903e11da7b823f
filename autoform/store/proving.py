"""Attempts, reserved declaration names and the Atlas entries that Lean admitted: what the per-unit pipeline
(:mod:`autoform.pipeline`) writes as it works a unit."""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from typing import Any

from autoform.store.core import StoreCore
from autoform.store.models import AtlasEntry, Attempt, UnitStatus, _row


class ProvingOps(StoreCore):
    """Attempts, reserved declaration names and the Atlas entries that Lean admitted."""

    def attempts(self, unit_id: int, job_id: int | None = None, *, superseded: bool = False) -> list[Attempt]:
        """The unit's attempts (of one job), oldest first; ``superseded``: also those made for a statement that
        re-ingest has since changed (history only, never counted or reused)."""
        cond = "" if superseded else " AND superseded = 0"
        if job_id is None:
            rows = self.query(f"SELECT * FROM attempts WHERE unit_id = ?{cond} ORDER BY id", (unit_id,))
        else:
            rows = self.query(
                f"SELECT * FROM attempts WHERE unit_id = ? AND job_id = ?{cond} ORDER BY id", (unit_id, job_id)
            )
        return [_row(Attempt, r) for r in rows]

    def record_attempt(
        self,
        *,
        job_id: int,
        unit_id: int,
        stage: str,
        author: str,
        lean_code: str,
        admitted: bool,
        reasons: list[dict[str, Any]],
        messages: list[dict[str, Any]],
        axioms: list[str] | None = None,
        toolchain: str = "",
        elapsed_s: float = 0.0,
        elaborated_type: str = "",
    ) -> tuple[int, int]:
        """One attempt at a stage (``statement``, ``proof``, ``definition``) of the unit, numbered after the
        stage's earlier attempts in this job: (its id, how many attempts of the stage came before it)."""
        with self.tx() as c:
            before = c.execute(
                "SELECT COUNT(*) FROM attempts WHERE unit_id = ? AND job_id = ? AND stage = ?",
                (unit_id, job_id, stage),
            ).fetchone()[0]
            aid = c.execute(
                "INSERT INTO attempts (job_id, unit_id, n, author, stage, lean_code, admitted, reasons, messages,"
                " axioms, toolchain, elapsed_s, created_at, elaborated_type) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                (
                    job_id,
                    unit_id,
                    before + 1,
                    author,
                    stage,
                    lean_code,
                    int(admitted),
                    json.dumps(reasons),
                    json.dumps(messages),
                    json.dumps(axioms) if axioms is not None else None,
                    toolchain,
                    elapsed_s,
                    time.time(),
                    elaborated_type,
                ),
            ).lastrowid
        return int(aid or 0), int(before)

    def atlas_entries(self, book_id: int) -> list[AtlasEntry]:
        rows = self.query(
            "SELECT a.* FROM atlas_entries a JOIN units u ON u.id = a.unit_id WHERE a.book_id = ? ORDER BY u.seq",
            (book_id,),
        )
        return [_row(AtlasEntry, r) for r in rows]

    def atlas_entry(self, unit_id: int) -> AtlasEntry | None:
        rows = self.query("SELECT * FROM atlas_entries WHERE unit_id = ?", (unit_id,))
        return _row(AtlasEntry, rows[0]) if rows else None

    def admit(
        self,
        *,
        unit_id: int,
        book_id: int,
        job_id: int,
        status: UnitStatus,
        decl_name: str,
        statement_lean: str,
        lean_code: str,
        model: str,
        attempt_id: int | None = None,
        attempts: int | None = None,
    ) -> bool:
        """The unit enters the Atlas with ``status`` (proved, defined, or stated: no ``attempt_id`` then) and its
        unit takes that status, in one transaction; False when the unit already had an entry (a racing attempt
        was admitted first), and nothing is written. ``attempts``: the count to show, by default every attempt
        of this job on the unit."""
        with self.tx() as c:
            if c.execute("SELECT 1 FROM atlas_entries WHERE unit_id = ?", (unit_id,)).fetchone():
                return False
            if attempts is None:
                attempts = c.execute(
                    "SELECT COUNT(*) FROM attempts WHERE unit_id = ? AND job_id = ?", (unit_id, job_id)
                ).fetchone()[0]
            c.execute(
                "INSERT INTO atlas_entries (unit_id, book_id, decl_name, status, statement_lean, lean_code,"
                " attempt_id, job_id, model, attempts, created_at) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                (
                    unit_id,
                    book_id,
                    decl_name,
                    str(status),
                    statement_lean,
                    lean_code,
                    attempt_id,
                    job_id,
                    model,
                    attempts,
                    time.time(),
                ),
            )
            c.execute("UPDATE units SET status = ? WHERE id = ?", (str(status), unit_id))
        return True

    def reserve_name(self, book_id: int, unit_id: int, name: str) -> str:
        """``name``, or ``name_2``, ``name_3``, ... : the first that no other unit of the book has reserved,
        reserved for ``unit_id`` in one transaction (so two workers, threads or Ray nodes, never pick the same
        declaration name)."""
        with self.tx() as c:
            candidate, k = name, 2
            while True:
                c.execute(
                    "INSERT OR IGNORE INTO decl_names (book_id, name, unit_id) VALUES (?,?,?)",
                    (book_id, candidate, unit_id),
                )
                owner = c.execute(
                    "SELECT unit_id FROM decl_names WHERE book_id = ? AND name = ?", (book_id, candidate)
                ).fetchone()[0]
                taken = c.execute(
                    "SELECT 1 FROM atlas_entries WHERE book_id = ? AND decl_name = ? AND unit_id != ?",
                    (book_id, candidate, unit_id),
                ).fetchone()
                if owner == unit_id and taken is None:
                    return candidate
                candidate, k = f"{name}_{k}", k + 1

    def release_names(self, book_id: int, unit_id: int, keep: Sequence[str]) -> None:
        """The names the unit reserved are free again, except those in ``keep`` (its locked statement's, its
        admitted helpers')."""
        marks = ",".join("?" * len(keep))
        with self.tx() as c:
            c.execute(
                f"DELETE FROM decl_names WHERE book_id = ? AND unit_id = ? AND name NOT IN ({marks})",
                (book_id, unit_id, *keep),
            )
