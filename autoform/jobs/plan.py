"""The plan of a job: which units are ready to start, given the dependency graph and the units' statuses. Pure
(no store, no clock, no threads), so it is tested on its own.

A unit is *ready* once every dependency it has in this job is concluded (admitted, stated or failed: a failed
dependency does not block). Dependency cycles are cut as :func:`autoform.graph.work_order` cuts them: only edges
to units earlier in the work order count. Ready units come out highest first by *height* (the longest chain of
units waiting on them), then in work order, so the critical path is never starved. Concluding a unit decrements
its dependents' counters: O(edges) over the whole job. A unit a person re-opens while the job runs is put back
(:meth:`ReadyQueue.reopen`): it waits on its open dependencies, and the units that use it and have not started
wait on it again.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterable, Mapping

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
    :meth:`conclude` each unit that ended (whatever became of it) to release the units waiting on it;
    :meth:`reopen` puts back units that a person re-opened while the job runs."""

    def __init__(self, graph: nx.DiGraph, todo: list[int]) -> None:
        self._graph = graph
        waiting, self._dependents, self._height = dependency_plan(graph, todo)
        self._pos = {uid: i for i, uid in enumerate(todo)}
        self._ranked = False  # positions from the whole book's work order (taken on the first re-opening)
        self._open = set(todo)  # not concluded: waiting, ready or started
        self._waiting = {uid: n for uid, n in waiting.items() if n}
        self._ready_set = {uid for uid, n in waiting.items() if n == 0}
        self._ready = [self._key(uid) for uid in self._ready_set]  # may hold stale keys: pop skips them
        heapq.heapify(self._ready)

    def _key(self, uid: int) -> tuple[int, int, int]:
        return (-self._height.get(uid, 1), self._pos[uid], uid)

    def _push(self, uid: int) -> None:
        self._ready_set.add(uid)
        heapq.heappush(self._ready, self._key(uid))

    def has_ready(self) -> bool:
        """Whether a unit is ready to start."""
        return bool(self._ready_set)

    def has_waiting(self) -> bool:
        """Whether a unit still waits on a dependency."""
        return bool(self._waiting)

    def is_open(self, uid: int) -> bool:
        """Whether ``uid`` is in the plan and not concluded (waiting, ready or started)."""
        return uid in self._open

    def pop(self) -> int:
        """The ready unit to start next (the highest, then the earliest in work order)."""
        while True:
            uid = heapq.heappop(self._ready)[2]
            if uid in self._ready_set:
                self._ready_set.discard(uid)
                return uid

    def conclude(self, uid: int) -> None:
        """``uid`` ended: the units waiting on it and on nothing else become ready."""
        self._open.discard(uid)
        for w in self._dependents.get(uid, ()):
            if w in self._waiting:
                self._waiting[w] -= 1
                if self._waiting[w] == 0:
                    del self._waiting[w]
                    self._push(w)

    def reopen(self, uids: list[int]) -> None:
        """Units concluded (or never in the plan) to be worked again, in work order: each waits on its open
        dependencies, and the open units that use it and have not started wait on it again."""
        self._rank()
        for uid in uids:
            self._pos.setdefault(uid, len(self._pos))
        for uid in sorted(set(uids) - self._open, key=self._pos.__getitem__):
            self._open.add(uid)
            deps = self._edges(uid, self._graph.successors, before=True)
            for d in deps:
                if uid not in self._dependents.setdefault(d, []):
                    self._dependents[d].append(uid)
            users = self._dependents.setdefault(uid, [])
            for w in self._edges(uid, self._graph.predecessors, before=False):
                if w not in users:
                    users.append(w)
                if w in self._ready_set:
                    self._ready_set.discard(w)  # its heap key goes stale
                    self._waiting[w] = 1
                elif w in self._waiting:
                    self._waiting[w] += 1
            self._height[uid] = 1 + max((self._height.get(w, 1) for w in users), default=0)
            if deps:
                self._waiting[uid] = len(deps)
            else:
                self._push(uid)

    def _edges(self, uid: int, neighbours: Callable[[int], Iterable[int]], *, before: bool) -> list[int]:
        """The open neighbours of ``uid`` earlier (``before``) or later in the work order (the order cuts cycles)."""
        if uid not in self._graph:
            return []
        pos = self._pos[uid]
        return [n for n in neighbours(uid) if n in self._open and (self._pos[n] < pos) == before and n != uid]

    def _rank(self) -> None:
        """Positions from the whole book's work order, so units outside the first plan have one too."""
        if self._ranked:
            return
        self._ranked = True
        old = sorted(self._pos, key=self._pos.__getitem__)
        self._pos = {uid: i for i, uid in enumerate(graphs.work_order(self._graph))}
        for uid in old:
            self._pos.setdefault(uid, len(self._pos))
        self._ready = [self._key(uid) for uid in self._ready_set]
        heapq.heapify(self._ready)
