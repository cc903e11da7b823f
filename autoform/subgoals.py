"""The subgoal tree of a unit's decomposition, read from the blackboard's ``subgoal`` posts (which the decomposer,
:mod:`autoform.pipeline.decompose`, writes): what the transcript, the site and ``status`` show of how a unit was
split and how each piece was closed."""

from __future__ import annotations

from pydantic import BaseModel, Field

from autoform.store import Post, Store


class SubgoalNode(BaseModel):
    """One subgoal of a unit: its lemma's name, goal, depth, state (``open``, ``proved``, ``failed``), how it was
    closed (``automation``, ``prover``, ``repair``, ``split``, ``reused``; "" while not proved), its standalone
    statement, and the subgoals it was split into."""

    name: str
    goal: str
    depth: int
    status: str
    by: str = ""
    statement: str = ""
    children: list[SubgoalNode] = Field(default_factory=list)


def subgoal_tree(store: Store, unit_id: int, job_id: int | None = None) -> list[SubgoalNode]:
    """The unit's subgoals as a tree (the holes of its sketch, each with the holes it was split into), from the
    ``subgoal`` posts (of ``job_id`` only, when given): each node's state is its latest post's. Empty when the unit
    was never decomposed."""
    unit = store.unit(unit_id)
    posts = [
        p
        for p in store.posts(unit.book_id, unit_id=unit_id, kind="subgoal")
        if (job_id is None or p.job_id == job_id) and p.data.get("name")
    ]
    return _tree(posts)


def _tree(posts: list[Post]) -> list[SubgoalNode]:
    nodes: dict[str, SubgoalNode] = {}
    parents: dict[str, str] = {}
    for p in posts:  # in id order: the latest post of a name gives its state
        d = p.data
        name = d["name"]
        old = nodes.get(name)
        status = d.get("status", "open")
        if old is not None and old.status == "proved" and status != "withdrawn":
            continue  # proved once: a later post of the name does not change how it was closed (unless the
            # tactic that closed it in tactic mode was withdrawn: the gate refused it in the whole text)
        nodes[name] = SubgoalNode(
            name=name,
            goal=d.get("goal", ""),
            depth=int(d.get("depth", 1)),
            status=status,
            by=d.get("by", "") if status == "proved" else "",
            statement=d.get("statement", ""),
        )
        parents[name] = d.get("parent_name", "")
    roots: list[SubgoalNode] = []
    for name, node in nodes.items():
        parent = nodes.get(parents[name])
        (parent.children if parent is not None else roots).append(node)
    return roots
