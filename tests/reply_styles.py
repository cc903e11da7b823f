"""The sample book's competent formalizer (conftest.book_script, with the end-to-end test's overrides) answering in
the style of a model family instead of the well-formed script: the same mathematics, written as

- ``deepseek``: DeepSeek-Prover-V2 - a proof plan, a ``have … := by sorry`` sketch, then the complete Lean file
  (``import Mathlib``, ``import Aesop``, ``set_option maxHeartbeats``, ``open BigOperators Real Nat Topology
  Rat``, the Atlas's definitions copied, the theorem restated); statements as files ending in ``:= by sorry``;
  JSON after a markdown analysis. Meant with ``prompt_style = "complete"`` for the prover and gap-closer.
- ``kimina``: Kimina-Prover - ``<think>`` with drafts, quoted goals and wrong attempts, then the final whole
  file; JSON bare after the reasoning. One unit thinks longer than the prover's default budget (the server,
  run with ``honour_max_tokens``, cuts it off: asked again with a larger budget).
- ``chat``: GPT / Claude - prose around everything, ``#check`` lines, a restated theorem, the error and the
  failed proof quoted back before the repair, capitalised JSON keys, ``"score": "9/10"``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable

from conftest import book_script, role_of
from fake_llm import Reply

LONG_THINK_LABEL = "lem:even-mul"
HEADER = "import Mathlib\nimport Aesop\n\nset_option maxHeartbeats 400000\n\nopen BigOperators Real Nat Topology Rat\n"


def _content(reply: str) -> tuple[str, str]:
    """(kind, content) of a well-formed reply: ("json", text), ("lean", code) or ("text", reply)."""
    m = re.search(r"```json\n(.*?)\n```", reply, re.S)
    if m:
        return "json", m.group(1)
    m = re.search(r"```lean\n(.*?)\n```", reply, re.S)
    if m:
        return "lean", m.group(1)
    return "text", reply


def _locked(body: dict) -> str:
    """The locked statement shown in the prompt (the last `theorem … := by` line)."""
    user = body["messages"][-1]["content"]
    found = re.findall(r"^(theorem [^\n]*?) := by$", user, re.M)
    return found[-1] if found else ""


def _defs(body: dict) -> str:
    """The Atlas's definitions the complete-style prompt shows (a whole-file answer copies them)."""
    user = body["messages"][-1]["content"]
    return "\n\n".join(re.findall(r"^def [^\n]*", user, re.M))


def _indent(code: str) -> str:
    lines = code.strip("\n").split("\n")
    base = min((len(x) - len(x.lstrip()) for x in lines if x.strip()), default=0)
    return "\n".join("  " + x[base:] if x.strip() else "" for x in lines)


def deepseek(role: str, kind: str, content: str, body: dict) -> str | Reply:
    if kind == "json":
        return (
            "### Analysis\n\nThe unit is read as stated; its notions are listed below.\n\n```json\n"
            + json.dumps(json.loads(content), indent=2)
            + "\n```"
        )
    if kind != "lean":
        return content
    if role == "drafter":
        if content.startswith("def "):
            return f"```lean4\n{HEADER}\n{content}\n```"
        return f"```lean4\n{HEADER}\n/-- The statement of the unit. -/\n{content} := by\n  sorry\n```"
    locked, proof = _locked(body), _indent(content)
    if role == "gap_closer":
        return (
            "### Analysis of the error\n\nThe previous proof does not compile; the corrected proof follows.\n\n"
            f"### Corrected Lean 4 Proof\n\n```lean4\nimport Mathlib\nimport Aesop\n\n{locked} := by\n{proof}\n```"
        )
    defs = _defs(body)
    return (
        "### Detailed Proof and Analysis\n\n**Step 1.** Unfold the hypotheses.\n**Step 2.** Conclude.\n\n"
        "### Step 1: Abstract Plan\n\n1. Reduce to the definitions.\n2. Close the goal.\n\n"
        f"### Step 2: Lean 4 `have` Statements\n\n```lean4\n{HEADER}\n{locked} := by\n"
        "  have h_main : True := by sorry\n  sorry\n```\n\n"
        f"### Complete Lean 4 Proof\n\n```lean4\n{HEADER}\n{defs + chr(10) + chr(10) if defs else ''}"
        f"{locked} := by\n{proof}\n```"
    )


def kimina(role: str, kind: str, content: str, body: dict) -> str | Reply:
    if kind == "json":
        return (
            '<think>\nLet me read the unit. A first draft: {"statement": "draft"}. Now the final one.\n</think>\n'
            + json.dumps(json.loads(content))
        )
    if kind != "lean":
        return content
    if role == "drafter":
        final = content if content.startswith("def ") else f"{content} := by sorry"
        return (
            f"<think>\nFirst attempt:\n```lean4\n{final.replace('ℤ', 'ℕ')}\n```\nNo: the book works over the "
            f"integers.\n</think>\n```lean4\n{HEADER}\n{final}\n```"
        )
    locked, proof = _locked(body), _indent(content)
    think = (
        f"<think>\nThe goal after unfolding is\n```\n⊢ {locked.split(' : ')[-1]}\n```\nTry:\n```lean4\n"
        f"{locked} := by\n  simp_all\n```\nsimp_all may not close it. Follow the book instead.\n"
    )
    label = re.search(r"\[label: ([^\]]+)\]", body["messages"][-1]["content"])
    if role == "prover" and label and label.group(1) == LONG_THINK_LABEL:
        think += "Checking every case once more. " * 2500  # ~19k tokens: longer than the default budget
    return f"{think}</think>\n```lean4\n{HEADER}\n{locked} := by\n{proof}\n```"


def chat(role: str, kind: str, content: str, body: dict) -> str | Reply:
    if kind == "json":
        data = json.loads(content)
        if role == "critic":
            data = {
                "Back_Translation": data["back_translation"],
                "Faithful": data["faithful"],
                "Score": f"{data['score']}/10",
                "Issues": data["issues"],
            }
        return (
            "Sure! Here's my assessment.\n\n```json\n"
            + json.dumps(data, indent=2, ensure_ascii=False)
            + "\n```\n\nLet me know if you'd like me to elaborate on any point."
        )
    if kind != "lean":
        return content
    if role == "drafter":
        if content.startswith("def "):
            return f"Here's the definition in Lean 4:\n\n```lean\n{content}\n\n#check @{content.split()[1]}\n```"
        name = content.split()[1]
        return (
            f"Here's a faithful formalization:\n\n```lean\nimport Mathlib\n\n{content} := by\n  sorry\n\n"
            f"#check @{name}\n```\n\n**Notes:** the hypotheses are binders, as in the book."
        )
    locked, proof = _locked(body), _indent(content)
    if role == "gap_closer":
        user = body["messages"][-1]["content"]
        failed = re.search(r"Failed proof:\n```lean\n(.*?)\n```", user, re.S)
        return (
            "The error means the proof used a step Lean rejected. Your original proof:\n\n```lean\n"
            + (failed.group(1) if failed else "")
            + "\n```\n\nHere is the corrected proof:\n\n```lean\n"
            + f"{locked} := by\n{proof}\n```\n\nThis version avoids the failing step."
        )
    name = locked.split()[1]
    return (
        f"Let me first recall the statement:\n\n```lean\n#check @{name}\n```\n\nHere is the full proof:\n\n"
        f"```lean\n{locked} := by\n{proof}\n```\n\n**Explanation.** We follow the book's argument step by step."
    )


STYLES: dict[str, Callable[[str, str, str, dict], str | Reply]] = {"deepseek": deepseek, "kimina": kimina, "chat": chat}


def styled_script(style: str, overrides: dict | None = None) -> Callable[[dict], str | Reply]:
    """conftest.book_script's answers, each rewritten in ``style``."""
    base = book_script(overrides)
    render = STYLES[style]

    def script(body: dict) -> str | Reply:
        out = base(body)
        if isinstance(out, Reply):
            return out
        kind, content = _content(out)
        return render(role_of(body), kind, content, body)

    return script


#: autoform.toml lines of each style's job
CONFIG = {
    "wellformed": "",
    "deepseek": '[llm.roles.prover]\nprompt_style = "complete"\n[llm.roles.gap_closer]\nprompt_style = "complete"\n',
    "kimina": "",
    "chat": "",
}
