"""Statement drafter: proposes k Lean 4 statements (or a definition) for a unit; a back-translation critic
compares each with the informal statement. Critiques steer which draft is locked; they never admit."""

from __future__ import annotations

from pydantic import BaseModel, Field

from agents.base import Agent, AgentRun
from autoform.lean.gate import declared_name
from autoform.llm import MalformedReply, code_blocks, json_block, one_lean_block


class Drafter(Agent):
    role = "drafter"
    reads = ("extraction", "lock", "verdict", "critique", "hint")

    def run(self, run: AgentRun, *, previous_error: str = "") -> tuple[str, int]:
        """One draft: (Lean text, draft post id). Raises MalformedReply when no usable draft comes back."""
        drafts = self.propose(run, k=1, previous_error=previous_error)
        return drafts[0]

    def propose(self, run: AgentRun, *, k: int, previous_error: str = "") -> list[tuple[str, int]]:
        """Up to k distinct drafts from one call: [(Lean text, draft post id)]."""

        def clean(block: str) -> str | None:
            text = block.strip().removeprefix(run.settings.lean.header).strip()
            if not declared_name(text):
                return None
            if run.unit.kind != "definition":
                # the statement only: cut any proof the model attached
                cut = _top_level_assign(text)
                text = text[:cut].rstrip() if cut is not None else text
            return text

        def parse(reply_text: str) -> list[str]:
            one_lean_block(reply_text)  # raises on no block or a truncated one
            texts = [t for t in (clean(b) for b in code_blocks(reply_text, "lean")) if t]
            if not texts:
                raise MalformedReply("the draft declares no `theorem NAME` or `def NAME`")
            return list(dict.fromkeys(texts))[:k]

        texts, reply, ctx = self.ask_parsed(run, parse, previous_error=previous_error, k=k)
        return [(t, run.board.post(self.role, "draft", t, unit_id=run.unit.id, round=run.round, refs=ctx.post_ids,
                                   data={"llm_call": reply.call_id, "of": len(texts)})) for t in texts]


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
        def parse(text: str) -> Critique:
            data = json_block(text)
            try:
                return Critique(
                    back_translation=str(data.get("back_translation") or ""),
                    faithful=bool(data.get("faithful")),
                    score=min(10.0, max(0.0, float(data.get("score") or 0))),
                    issues=[str(i) for i in (data.get("issues") or []) if str(i).strip()],
                )
            except (TypeError, ValueError) as e:
                raise MalformedReply(f"the critique's fields are not of the asked types: {e}") from e

        crit, reply, ctx = self.ask_parsed(run, parse, lean=lean)
        body = f"Fidelity of `{declared_name(lean)}`: {crit.fidelity}. {crit.back_translation}".strip()
        if crit.issues:
            body += "\nIssues: " + "; ".join(crit.issues)
        pid = run.board.post(self.role, "critique", body, unit_id=run.unit.id, round=run.round, refs=ctx.post_ids,
                             data={"fidelity": crit.fidelity, "faithful": crit.faithful, "score": crit.score,
                                   "issues": crit.issues, "lean": lean, "llm_call": reply.call_id})
        return crit, pid


def _top_level_assign(text: str) -> int | None:
    """Index of the first ':=' outside brackets (where a proof would start)."""
    depth = 0
    for i, c in enumerate(text):
        if c in "([{⟨":
            depth += 1
        elif c in ")]}⟩":
            depth -= 1
        elif c == ":" and depth == 0 and text.startswith(":=", i):
            return i
    return None
