"""The four agents (Reader, Drafter, Prover, GapCloser) on a small store, through the real LLMClient and the
real ``openai`` client against tests/fake_llm.py.

For each agent: one chat call; the system message is the agent's system.md (rendered); the user message holds
the unit; the attention filter's posts are in the prompt and recorded as ``posts_used``; the right post lands
on the blackboard.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import jinja2
import pytest

TESTS_DIR = Path(__file__).resolve().parent
if str(TESTS_DIR) not in sys.path:
    sys.path.insert(0, str(TESTS_DIR))

from fake_llm import FakeLLM  # noqa: E402

from agents import AgentRun, Drafter, GapCloser, Prover, Reader  # noqa: E402
from agents.base import PROMPTS  # noqa: E402
from autoform.blackboard import Blackboard  # noqa: E402
from autoform.config import LLMConfig, RoleLLM, Settings  # noqa: E402
from autoform.llm import LLMClient, MalformedReply  # noqa: E402
from autoform.store import Store  # noqa: E402

NAMESPACE = "ENT"
DEF_STATEMENT = r"An integer $a$ \emph{divides} $b$, written $a \mid b$, if $b = ak$ for some $k \in \mathbb{Z}$."
LEM_STATEMENT = r"If $a \mid b$ and $b \mid c$ for integers $a, b, c$, then $a \mid c$."
LEM_PROOF = r"Write $b = ak$ and $c = bl$ (Definition~\ref{def:divides}); then $c = a(kl)$."

# blackboard posts seeded before every agent runs: (kind, unit key, body); each body carries a marker
SEED = [
    ("extraction", "def", "EXTRACTION-MARKER divisibility: a divides b when b = a k for an integer k."),
    ("lock", "def", "def Divides (a b : ℤ) : Prop := ∃ k, b = a * k -- LOCK-MARKER"),
    ("hint", "lem", "HINT-MARKER transitivity of divisibility follows from dvd_trans in Mathlib."),
    ("proof", "lem", "exact dvd_tran h₁ h₂ -- PROOF-MARKER"),
    ("verdict", "lem", "VERDICT-MARKER rejected: unknown identifier 'dvd_tran'."),
    ("admission", "def", "ADMISSION-MARKER Divides entered the Atlas as ENT.Divides."),
    ("critique", "lem", "CRITIQUE-MARKER the divisibility draft used natural numbers instead of integers."),
    ("draft", "lem", "theorem draft_marker : DRAFT-MARKER"),
]


def system_prompt(role: str) -> str:
    """The agent's system.md rendered independently of agents/base.py."""
    text = (PROMPTS / role / "system.md").read_text(encoding="utf-8")
    return jinja2.Template(text).render(namespace=NAMESPACE, header="import Mathlib").strip()


class Env:
    def __init__(self, tmp_path: Path, srv: FakeLLM) -> None:
        self.srv = srv
        self.settings = Settings(
            home=tmp_path, llm=LLMConfig(base_url=srv.base_url, api_key="k", model="m", max_retries=1, timeout_s=2)
        )
        self.store = Store(self.settings.db_path)
        with self.store.tx() as c:
            self.book_id = c.execute(
                "INSERT INTO books (slug, title, source_path, source_kind, ingested_at) VALUES (?,?,?,?,?)",
                ("ent", "Elementary Number Theory", "main.tex", "latex", time.time()),
            ).lastrowid
            unit_sql = (
                "INSERT INTO units (book_id, ident, seq, kind, number, title, label, statement, proof, chapter,"
                " section) VALUES (?,?,?,?,?,?,?,?,?,?,?)"
            )
            self.def_id = c.execute(
                unit_sql,
                (
                    self.book_id,
                    "def:divides",
                    1,
                    "definition",
                    "1.5",
                    "",
                    "def:divides",
                    DEF_STATEMENT,
                    "",
                    "Elementary Number Theory",
                    "Divisibility",
                ),
            ).lastrowid
            self.lem_id = c.execute(
                unit_sql,
                (
                    self.book_id,
                    "lem:dvd-trans",
                    2,
                    "lemma",
                    "1.6",
                    "Transitivity",
                    "lem:dvd-trans",
                    LEM_STATEMENT,
                    LEM_PROOF,
                    "Elementary Number Theory",
                    "Divisibility",
                ),
            ).lastrowid
            c.execute("INSERT INTO unit_deps (unit_id, dep_id) VALUES (?,?)", (self.lem_id, self.def_id))
            self.job_id = c.execute(
                "INSERT INTO jobs (book_id, status, started_at) VALUES (?,?,?)", (self.book_id, "running", time.time())
            ).lastrowid
        self.board = Blackboard(self.store, self.book_id, self.job_id)
        self.llm = LLMClient(self.settings, self.store, retry_initial_s=0.01)
        self.seeded: dict[str, int] = {}  # kind -> post id
        self.bodies: dict[str, str] = {}

    def seed(self) -> None:
        for kind, which, body in SEED:
            uid = self.def_id if which == "def" else self.lem_id
            self.seeded[kind] = self.board.post("gate", kind, body, unit_id=uid, round=0)  # type: ignore[arg-type]
            self.bodies[kind] = body

    def run(self, unit: str = "lem", **kw) -> AgentRun:
        uid = self.lem_id if unit == "lem" else self.def_id
        hops = {self.lem_id: 0, self.def_id: 1} if unit == "lem" else {self.def_id: 0, self.lem_id: 1}
        return AgentRun(
            settings=self.settings,
            llm=self.llm,
            board=self.board,
            unit=self.store.unit(uid),
            hops=hops,
            namespace=NAMESPACE,
            **kw,
        )

    def calls(self) -> list[dict]:
        return [dict(r) for r in self.store.query("SELECT * FROM llm_calls ORDER BY id")]

    def only_request(self) -> tuple[str, str]:
        """(system, user) of the one chat request the server saw."""
        assert len(self.srv.requests) == 1, f"expected one chat call, got {len(self.srv.requests)}"
        assert len(self.calls()) == 1
        msgs = self.srv.requests[0]["messages"]
        assert [m["role"] for m in msgs] == ["system", "user"]
        return msgs[0]["content"], msgs[1]["content"]

    def check_context(self, agent, user: str) -> list[int]:
        """posts_used is exactly the posts of the kinds the agent reads, and their bodies are in the prompt."""
        (row,) = self.calls()
        used = json.loads(row["posts_used"])
        expected = sorted(self.seeded[k] for k in agent.reads if k in self.seeded)
        assert used == expected
        for kind, pid in self.seeded.items():
            if pid in used:
                assert self.bodies[kind] in user, f"{kind} post chosen but not in the prompt"
            else:
                marker = next(w for w in self.bodies[kind].split() if w.endswith("-MARKER"))
                assert marker not in user, f"{kind} post in the prompt but not recorded"
        return used


@pytest.fixture
def env(tmp_path):
    with FakeLLM(lambda body: "unscripted") as srv:
        e = Env(tmp_path, srv)
        yield e
        e.store.close()


def json_reply(obj: dict) -> str:
    return "Here is the analysis.\n```json\n" + json.dumps(obj, ensure_ascii=False) + "\n```\n"


def assert_unit_in_prompt(user: str, statement: str, label: str) -> None:
    assert statement in user
    assert f"[label: {label}]" in user


# ---------------------------------------------------------------------------------------------- reader
def test_reader_posts_an_extraction(env):
    env.seed()
    env.srv.push(
        json_reply(
            {
                "statement": r"For all integers $a, b, c$: if $a \mid b$ and $b \mid c$ then $a \mid c$.",
                "concepts": ["integer", "divisibility"],
                "conventions": ["a, b, c range over the integers"],
                "dependencies": ["Definition 1.5"],
            }
        )
    )
    run = env.run()
    expected_ctx = Reader().context(run).post_ids
    pid = Reader().run(run)

    system, user = env.only_request()
    assert system == system_prompt("reader")
    assert "You never write Lean." in system
    assert_unit_in_prompt(user, LEM_STATEMENT, "lem:dvd-trans")
    assert "Lemma 1.6 (Transitivity)" in user and "Elementary Number Theory / Divisibility" in user
    assert LEM_PROOF in user
    used = env.check_context(Reader(), user)
    assert used == expected_ctx == [env.seeded["extraction"]]

    post = env.board.latest(env.lem_id, "extraction")
    assert post is not None and post.id == pid
    assert post.author == "reader" and post.job_id == env.job_id and post.refs == used
    assert post.data["concepts"] == ["integer", "divisibility"]
    assert post.data["conventions"] == ["a, b, c range over the integers"]
    assert post.data["dependencies"] == ["Definition 1.5"]
    assert post.data["statement"].startswith("For all integers")
    assert post.data["llm_call"] == env.calls()[0]["id"]
    assert "Concepts: integer, divisibility" in post.body
    assert "Conventions: a, b, c range over the integers" in post.body
    assert [p for p in env.board.read(kind="critique") if p.author == "reader"] == []  # a usable reply


def test_reader_non_json_reply_falls_back_to_the_parser(env):
    for _ in range(3):  # the first answer and both format retries are unusable
        env.srv.push("The statement says divisibility is transitive. Concepts: integers.")
    pid = Reader().run(env.run())
    requests = env.srv.requests
    assert len(requests) == 3  # asked again, twice, with what was wrong
    retry = requests[1]["messages"]
    assert retry[-2]["role"] == "assistant" and "could not be used" in retry[-1]["content"]
    assert "not the JSON" in retry[-1]["content"]

    post = env.board.latest(env.lem_id, "extraction")
    assert post is not None and post.id == pid
    assert post.data["statement"] == LEM_STATEMENT  # the parser's statement stands
    assert post.data["concepts"] == [] and post.data["dependencies"] == []
    assert post.body == LEM_STATEMENT

    (critique,) = env.board.read(unit_id=env.lem_id, kind="critique")
    assert critique.author == "reader"
    assert "reader reply unusable" in critique.body and "not the JSON" in critique.body
    assert critique.id < post.id


def test_reader_malformed_then_good_reply_is_used(env):
    env.srv.push("no json here", json_reply({"statement": "restated", "concepts": ["integer"]}))
    Reader().run(env.run())
    assert len(env.srv.requests) == 2
    post = env.board.latest(env.lem_id, "extraction")
    assert post.data["statement"] == "restated" and post.data["concepts"] == ["integer"]
    assert env.board.read(unit_id=env.lem_id, kind="critique") == []


def test_reader_tolerates_null_fields(env):
    env.srv.push(
        json_reply({"statement": "restated", "concepts": ["integer"], "conventions": None, "dependencies": None})
    )
    Reader().run(env.run())
    post = env.board.latest(env.lem_id, "extraction")
    assert post is not None
    assert post.data["concepts"] == ["integer"] and post.data["dependencies"] == []


def test_reader_string_instead_of_list(env):
    env.srv.push(json_reply({"statement": "restated", "concepts": "integer", "conventions": [], "dependencies": []}))
    Reader().run(env.run())
    post = env.board.latest(env.lem_id, "extraction")
    assert post is not None and post.data["concepts"] == ["integer"]


# --------------------------------------------------------------------------------------------- drafter
def test_drafter_posts_the_statement_without_proof(env):
    env.seed()
    env.srv.push(
        "Here it is.\n```lean\nimport Mathlib\n\n"
        "theorem dvd_trans' {a b c : ℤ} (h₁ : Divides a b) (h₂ : Divides b c) : Divides a c := by\n"
        "  obtain ⟨k, rfl⟩ := h₁\n  exact ⟨k, rfl⟩\n```\n"
    )
    run = env.run(deps_lean=[{"name": "ENT.Divides", "statement": "def Divides (a b : ℤ) : Prop"}])
    expected_ctx = Drafter().context(run).post_ids
    text, pid = Drafter().run(run, previous_error="PREVIOUS-ERROR-MARKER unknown constant")

    assert text == "theorem dvd_trans' {a b c : ℤ} (h₁ : Divides a b) (h₂ : Divides b c) : Divides a c"
    system, user = env.only_request()
    assert system == system_prompt("drafter")
    assert "Faithfulness matters more than anything" in system
    assert f"inside `namespace {NAMESPACE}` after `import Mathlib`" in system
    assert_unit_in_prompt(user, LEM_STATEMENT, "lem:dvd-trans")
    assert "Kind: lemma" in user
    assert "- ENT.Divides: `def Divides (a b : ℤ) : Prop`" in user
    assert "PREVIOUS-ERROR-MARKER unknown constant" in user
    used = env.check_context(Drafter(), user)
    assert used == expected_ctx
    assert {env.seeded[k] for k in ("extraction", "lock", "verdict", "critique", "hint")} == set(used)

    post = env.board.latest(env.lem_id, "draft")
    assert post is not None and post.id == pid and post.author == "drafter"
    assert post.body == text and ":=" not in post.body
    assert post.refs == used and post.data["llm_call"] == env.calls()[0]["id"]


def test_drafter_keeps_a_definition_body(env):
    env.srv.push("```lean\ndef Divides (a b : ℤ) : Prop := ∃ k, b = a * k\n```")
    text, pid = Drafter().run(env.run("def"))
    assert text == "def Divides (a b : ℤ) : Prop := ∃ k, b = a * k"
    _, user = env.only_request()
    assert_unit_in_prompt(user, DEF_STATEMENT, "def:divides")
    assert "Kind: definition" in user and "Write the Lean 4 definition" in user
    assert env.board.latest(env.def_id, "draft").body == text


def test_drafter_without_lean_block_is_malformed(env):
    for _ in range(3):
        env.srv.push("I would state it with Mathlib's divisibility, as transitivity.")
    with pytest.raises(MalformedReply) as ei:
        Drafter().run(env.run())
    assert "no ```lean code block" in str(ei.value)
    assert len(env.srv.requests) == 3  # the first answer and two format retries, then the error
    assert env.board.read(kind="draft") == []


def test_drafter_block_without_declaration_is_malformed(env):
    for _ in range(3):
        env.srv.push("```lean\nexample : 1 + 1 = 2 := rfl\n```")
    with pytest.raises(MalformedReply) as ei:
        Drafter().run(env.run())
    assert "declares no" in str(ei.value)
    assert env.board.read(kind="draft") == []


def test_drafter_recovers_from_a_truncated_block(env):
    env.srv.push("```lean\ntheorem t : True", "```lean\ntheorem t (a : ℤ) : a ∣ a\n```")
    text, _ = Drafter().run(env.run())
    assert text == "theorem t (a : ℤ) : a ∣ a"
    assert "truncated" in env.srv.requests[1]["messages"][-1]["content"]


# ---------------------------------------------------------------------------------------------- prover
LOCKED = "theorem dvd_trans' {a b c : ℤ} (h₁ : Divides a b) (h₂ : Divides b c) : Divides a c"


def test_prover_separates_aux_lemmas(env):
    env.seed()
    aux = "theorem mul_assoc_helper (a k l : ℤ) : a * k * l = a * (k * l) := by ring"
    proof = "obtain ⟨k, rfl⟩ := h₁\nobtain ⟨l, rfl⟩ := h₂\nexact ⟨k * l, mul_assoc_helper a k l⟩"
    env.srv.push(f"First a helper:\n```lean\n{aux}\n```\nThen the proof:\n```lean4\n{proof}\n```\n")
    run = env.run()
    expected_ctx = Prover().context(run).post_ids
    got_aux, got_proof, pid = Prover().run(run, locked=LOCKED)

    assert (got_aux, got_proof) == (aux, proof)
    system, user = env.only_request()
    assert system == system_prompt("prover")
    assert "Write a tactic proof." in system
    assert_unit_in_prompt(user, LEM_STATEMENT, "lem:dvd-trans")
    assert LEM_PROOF in user
    assert f"```lean\n{LOCKED} := by\n```" in user
    used = env.check_context(Prover(), user)
    assert used == expected_ctx
    assert {env.seeded[k] for k in ("extraction", "lock", "admission", "hint")} == set(used)

    post = env.board.latest(env.lem_id, "proof")
    assert post is not None and post.id == pid and post.author == "prover"
    assert post.body == proof and post.data["aux"] == aux
    assert post.refs == used and post.data["llm_call"] == env.calls()[0]["id"]


def test_prover_single_block_has_no_aux(env):
    env.srv.push("```lean\nexact dvd_trans h₁ h₂\n```")
    aux, proof, _ = Prover().run(env.run(), locked=LOCKED)
    assert (aux, proof) == ("", "exact dvd_trans h₁ h₂")
    assert env.board.latest(env.lem_id, "proof").data["aux"] == ""


def test_prover_without_block_is_malformed(env):
    env.srv.push("Use transitivity.")
    with pytest.raises(MalformedReply):
        Prover().run(env.run(), locked=LOCKED)
    assert env.board.read(kind="proof") == []


# ------------------------------------------------------------------------------------------ gap-closer
def test_gap_closer_sees_the_failure_and_posts_a_proof(env):
    env.seed()
    failed = "exact dvd_tran h₁ h₂"
    errors = "3:2: error: unknown identifier 'dvd_tran'\nunsolved goals: a ∣ c"
    aux = "theorem helper (a b c : ℤ) (h : Divides a b) (h' : Divides b c) : Divides a c := by\n  sorry_free"
    proof = "exact helper a b c h₁ h₂"
    env.srv.push(f"```lean\n{aux}\n```\n\n```lean\n{proof}\n```")
    run = env.run()
    expected_ctx = GapCloser().context(run).post_ids
    got_aux, got_proof, pid = GapCloser().run(run, locked=LOCKED, failed_proof=failed, errors=errors)

    assert (got_aux, got_proof) == (aux, proof)
    system, user = env.only_request()
    assert system == system_prompt("gap_closer")
    assert "A proof of a locked statement failed." in system
    assert_unit_in_prompt(user, LEM_STATEMENT, "lem:dvd-trans")
    assert f"Failed proof:\n```lean\n{failed}\n```" in user
    assert errors in user
    assert f"{LOCKED} := by" in user
    used = env.check_context(GapCloser(), user)
    assert used == expected_ctx
    assert {env.seeded[k] for k in ("extraction", "lock", "proof", "verdict", "admission", "hint")} == set(used)

    proofs = env.board.read(unit_id=env.lem_id, kind="proof")
    post = proofs[-1]
    assert post.id == pid and post.author == "gap_closer"
    assert post.body == proof and post.data["aux"] == aux
    assert post.refs == used and post.data["llm_call"] == env.calls()[0]["id"]


# ------------------------------------------------------------------------------------ attention budget
def test_over_budget_posts_are_left_out_but_pinned_ones_stay(env):
    env.settings.attention.budgets["prover"] = 40  # the prover's own budget
    lock = env.board.post(
        "drafter", "lock", "theorem locked_marker : LOCK-OWN-MARKER " + "x " * 200, unit_id=env.lem_id
    )
    small = env.board.post("reader", "extraction", "SMALL-MARKER divisibility is transitive.", unit_id=env.def_id)
    big = env.board.post(
        "reader", "hint", "BIG-MARKER " + "unrelated words about prime numbers " * 60, unit_id=env.def_id
    )
    env.srv.push("```lean\nexact h\n```")
    Prover().run(env.run(), locked=LOCKED)

    _, user = env.only_request()
    used = json.loads(env.calls()[0]["posts_used"])
    assert lock in used and "LOCK-OWN-MARKER" in user  # pinned: enters even over budget
    assert big not in used and "BIG-MARKER" not in user
    assert small not in used and "SMALL-MARKER" not in user  # the pinned lock already spent the budget
    assert used == [lock]


def test_budget_keeps_the_posts_that_fit(env):
    env.settings.attention.budgets["prover"] = 60
    small = env.board.post("reader", "extraction", "SMALL-MARKER divisibility is transitive.", unit_id=env.def_id)
    big = env.board.post(
        "reader", "hint", "BIG-MARKER " + "unrelated words about prime numbers " * 60, unit_id=env.def_id
    )
    env.srv.push("```lean\nexact h\n```")
    Prover().run(env.run(), locked=LOCKED)
    _, user = env.only_request()
    used = json.loads(env.calls()[0]["posts_used"])
    assert used == [small] and "SMALL-MARKER" in user
    assert big not in used and "BIG-MARKER" not in user


# ------------------------------------------------------------------------------ replies as models write them
def test_prover_reads_a_whole_file_answer_and_drops_a_copied_definition(env):
    env.srv.push(
        "### Complete Lean 4 Proof\n```lean4\nimport Mathlib\nimport Aesop\n\nopen Nat\n\n"
        "def Divides (a b : ℤ) : Prop := ∃ k, b = a * k\n\n"
        f"{LOCKED} := by\n  exact dvd_trans h₁ h₂\n```"
    )
    run = env.run(deps_lean=[{"name": "Divides", "statement": "def Divides (a b : ℤ) : Prop", "code": "def Divides"}])
    aux, proof, _ = Prover().run(run, locked=LOCKED)
    assert (aux, proof) == ("", "open Nat in\nexact dvd_trans h₁ h₂")


def test_prover_refuses_a_changed_statement_and_says_why(env):
    changed = "theorem dvd_trans' {a b c : ℕ} (h₁ : Divides a b) (h₂ : Divides b c) : Divides a c"
    for _ in range(3):
        env.srv.push(f"```lean\n{changed} := by\n  exact dvd_trans h₁ h₂\n```")
    with pytest.raises(MalformedReply) as ei:
        Prover().run(env.run(), locked=LOCKED)
    assert "different statement" in str(ei.value) and "locked" in str(ei.value)
    retry = env.srv.requests[1]["messages"]
    assert "different statement" in retry[-1]["content"]


def test_format_retry_sends_back_the_answer_not_the_reasoning(env):
    env.srv.push("<think>SECRET-REASONING draft</think>\nUse omega.", "```lean\nexact dvd_trans h₁ h₂\n```")
    _, proof, _ = Prover().run(env.run(), locked=LOCKED)
    assert proof == "exact dvd_trans h₁ h₂"
    sent = env.srv.requests[1]["messages"]
    assert sent[-2] == {"role": "assistant", "content": "Use omega."}
    assert all("SECRET-REASONING" not in m["content"] for m in sent)


def test_a_reply_cut_at_the_cap_is_asked_again_for_a_shorter_answer(env):
    env.settings.llm.roles["prover"] = RoleLLM(max_tokens=100, max_tokens_cap=200)
    from fake_llm import Reply

    env.srv.push(
        Reply(text="<think>long", finish_reason="length"),
        Reply(text="<think>longer", finish_reason="length"),
        "```lean\nexact dvd_trans h₁ h₂\n```",
    )
    _, proof, _ = Prover().run(env.run(), locked=LOCKED)
    assert proof == "exact dvd_trans h₁ h₂"
    first, second, third = env.srv.requests
    assert (first["max_tokens"], second["max_tokens"]) == (100, 200) and first["messages"] == second["messages"]
    assert third["max_tokens"] == 200 and "cut off" in third["messages"][-1]["content"]
    assert "briefly" in third["messages"][-1]["content"]


def test_complete_prompt_style_for_prover_models(env):
    env.settings.llm.roles["prover"] = RoleLLM(prompt_style="complete")
    env.srv.push("```lean4\nimport Mathlib\n\n" + LOCKED + " := by\n  exact dvd_trans h₁ h₂\n```")
    run = env.run(
        deps_lean=[
            {
                "name": "Divides",
                "statement": "def Divides (a b : ℤ) : Prop",
                "code": "def Divides (a b : ℤ) : Prop := ∃ k, b = a * k",
            }
        ]
    )
    _, proof, _ = Prover().run(run, locked=LOCKED)
    assert proof == "exact dvd_trans h₁ h₂"
    system, user = env.only_request()
    assert user.startswith("Complete the following Lean 4 code:\n\n```lean4\nimport Mathlib\n\nnamespace ENT\n")
    assert "def Divides (a b : ℤ) : Prop := ∃ k, b = a * k" in user
    assert f"{LOCKED} := by\n```" in user and "[label: lem:dvd-trans]" in user
    assert "proof plan" in user and system.startswith("You are the prover")
