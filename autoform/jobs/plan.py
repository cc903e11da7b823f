"""The plan of a job: which units are ready to start, given the dependency graph and the units' statuses. Pure
(no store, no clock, no threads), so it is tested on its own.

A unit is *ready* once every dependency it has in this job is concluded (admitted, stated or failed: a failed
dependency does not block). Dependency cycles are cut as :func:`autoform.graph.work_order` cuts them: only edges
to units earlier in the work order count. Ready units come out highest first by *height* (the longest chain of
units waiting on them), then in work order, so the critical path is never starved. Concluding a unit decrements
its dependents' counters: O(edges) over the whole job.
"""

from __future__ import annotations

import heapq
from collections.abc import Mapping

import networkx as nx

from autoform import graph as graphs
from autoform.store import TERMINAL, UnitStatus


def job_todo(graph: nx.DiGraph, statuses: Mapping[int, UnitStatus]) -> list[int]:
    """The units a job works on, in work order: those of ``statuses`` not yet concluded."""
    return [uid for uid in graphs.work_order(graph) if uid in statuses and statuses[uid] not in TERMINAL]


def dependency_plan(graph: nx.DiGraph, todo: list[int]) -> tuple[dict[int, int], dict[int, list[int]], dict[int, int]]:
    """For units in ``todo`` (in work order): how many unfinished dependencies each waits on, who waits on
    each, and each unit's height (longest chain of waiting units above it, itself included). Only edges to
    units earlier in the work order count, which cuts cycles exactly where the work order does."""
    pos = {uid: i for i, uid in enumerate(todo)}
    waiting: dict[int, int] = {}
    dependents: dict[int, list[int]] = {}
    for uid in todo:
        deps = [d for d in graph.successors(uid) if pos.get(d, len(todo)) < pos[uid]] if uid in graph else []
        waiting[uid] = len(deps)
        for d in deps:
            dependents.setdefault(d, []).append(uid)
    height: dict[int, int] = {}
    for uid in reversed(todo):
        height[uid] = 1 + max((height[w] for w in dependents.get(uid, ())), default=0)
    return waiting, dependents, height


class ReadyQueue:
    """The units of ``todo`` (in work order) as they become ready: :meth:`pop` the next one to start, and
    :meth:`conclude` each unit that ended (whatever became of it) to release the units waiting on it."""

    def __init__(self, graph: nx.DiGraph, todo: list[int]) -> None:
        waiting, self._dependents, self._height = dependency_plan(graph, todo)
        self._pos = {uid: i for i, uid in enumerate(todo)}
        self._waiting = {uid: n for uid, n in waiting.items() if n}
        self._ready = [self._key(uid) for uid, n in waiting.items() if n == 0]
        heapq.heapify(self._ready)

    def _key(self, uid: int) -> tuple[int, int, int]:
        return (-self._height[uid], self._pos[uid], uid)

    def has_ready(self) -> bool:
        """Whether a unit is ready to start."""
        return bool(self._ready)

    def has_waiting(self) -> bool:
        """Whether a unit still waits on a dependency."""
        return bool(self._waiting)

    def pop(self) -> int:
        """The ready unit to start next (the highest, then the earliest in work order)."""
        return heapq.heappop(self._ready)[2]

    def conclude(self, uid: int) -> None:
        """``uid`` ended: the units waiting on it and on nothing else become ready."""
        for w in self._dependents.get(uid, ()):
            if w in self._waiting:
                self._waiting[w] -= 1
                if self._waiting[w] == 0:
                    del self._waiting[w]
                    heapq.heappush(self._ready, self._key(w))
