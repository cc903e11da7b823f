"""Statement drafter: proposes k Lean 4 statements (or a definition) for a unit; a back-translation critic
compares each with the informal statement. Critiques steer which draft is locked; they never admit."""

from __future__ import annotations

from pydantic import BaseModel, Field

from agents.base import Agent, AgentRun
from autoform.lean.gate import declared_name
from autoform.llm import MalformedReply
from autoform.replies import parse_json, parse_statements, read_fields


class Drafter(Agent):
    role = "drafter"
    reads = ("extraction", "lock", "verdict", "critique", "hint", "retrieval")

    def run(self, run: AgentRun, *, previous_error: str = "") -> tuple[str, int]:
        """One draft: (Lean text, draft post id). Raises MalformedReply when no usable draft comes back."""
        drafts = self.propose(run, k=1, previous_error=previous_error)
        return drafts[0]

    def propose(self, run: AgentRun, *, k: int, previous_error: str = "") -> list[tuple[str, int]]:
        """Up to k distinct drafts from one call: [(Lean text, draft post id)]."""

        kind = "definition" if run.unit.kind == "definition" else "theorem"

        def parse(reply_text: str) -> list[str]:
            return parse_drafts(reply_text, kind=kind, k=k, header=run.settings.lean.header)

        texts, reply, ctx = self.ask_parsed(run, parse, previous_error=previous_error, k=k)
        return [
            (
                t,
                run.board.post(
                    self.role,
                    "draft",
                    t,
                    unit_id=run.unit.id,
                    round=run.round,
                    refs=ctx.post_ids,
                    data={"llm_call": reply.call_id, "of": len(texts)},
                ),
            )
            for t in texts
        ]


def parse_drafts(text: str, *, kind: str, k: int = 1, header: str = "") -> list[str]:
    """Up to k drafts from a reply: statements only for a theorem (a proof the model attached is cut; headers,
    namespaces, helper defs dropped), the whole definition for a definition; with k = 1 the answer's last."""
    texts = parse_statements(
        text, kind="definition" if kind == "definition" else "theorem", header=header, last_only=k == 1
    )
    texts = [t for t in texts if declared_name(t)]
    if not texts:
        raise MalformedReply("the draft declares no `theorem NAME` or `def NAME`")
    return texts[-1:] if k == 1 else texts[:k]


class Critique(BaseModel):
    back_translation: str = ""
    faithful: bool = False
    score: float = Field(default=0.0, ge=0, le=10)
    issues: list[str] = Field(default_factory=list)

    @property
    def fidelity(self) -> str:
        return f"{'faithful' if self.faithful else 'unfaithful'} {self.score:g}/10"


class FidelityCritic(Agent):
    """Back-translation: reads a Lean statement back into mathematics and compares it with the book."""

    role = "critic"
    prompt_dir = "drafter"
    system_file = "critique_system.md"
    prompt_file = "critique.md"
    reads = ("extraction",)

    def run(self, run: AgentRun, *, lean: str) -> tuple[Critique, int]:
        crit, reply, ctx = self.ask_parsed(run, parse_critique, lean=lean)
        body = f"Fidelity of `{declared_name(lean)}`: {crit.fidelity}. {crit.back_translation}".strip()
        if crit.issues:
            body += "\nIssues: " + "; ".join(crit.issues)
        pid = run.board.post(
            self.role,
            "critique",
            body,
            unit_id=run.unit.id,
            round=run.round,
            refs=ctx.post_ids,
            data={
                "fidelity": crit.fidelity,
                "faithful": crit.faithful,
                "score": crit.score,
                "issues": crit.issues,
                "lean": lean,
                "llm_call": reply.call_id,
            },
        )
        return crit, pid


CRITIQUE_FIELDS: dict = {
    "back_translation": ("str", False),
    "faithful": ("bool", True),
    "score": ("score", True),
    "issues": ("list[str]", False),
}


def parse_critique(text: str) -> Critique:
    """The critic's JSON (tolerant in form, strict in meaning: see :func:`autoform.replies.read_fields`)."""
    f = read_fields(parse_json(text, CRITIQUE_FIELDS), CRITIQUE_FIELDS)
    if not 0 <= f["score"] <= 10:
        raise MalformedReply(f"the JSON field 'score' must be between 0 and 10, not {f['score']:g}")
    return Critique(**f)
