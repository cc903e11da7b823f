"""What every reader (LaTeX, PDF) produces: units in book order, with their references."""

from __future__ import annotations

from pydantic import BaseModel, Field

KINDS = (
    "definition", "theorem", "lemma", "proposition", "corollary", "example", "exercise", "axiom", "remark", "claim",
)


class RawUnit(BaseModel):
    kind: str
    number: str = ""
    title: str = ""
    label: str = ""
    statement: str
    statement_raw: str = ""
    proof: str = ""
    proof_raw: str = ""
    chapter: str = ""
    section: str = ""
    source: str = ""
    refs: list[str] = Field(default_factory=list)
    labels: list[str] = Field(default_factory=list)  # every \\label inside the unit (equations, items), first = label
    text_refs: list[tuple[str, str]] = Field(default_factory=list)

    @property
    def ident(self) -> str:
        """Identity across re-ingests: the label, else kind and number."""
        if self.label:
            return self.label
        return f"{self.kind}:{self.number}" if self.number else ""


class IngestResult(BaseModel):
    title: str = ""
    source_kind: str
    root: str
    units: list[RawUnit]
    warnings: list[str] = Field(default_factory=list)
