"""The Mathlib declaration index (autoform/mathlib/): read from source, searched with Mathlib's naming
conventions, names checked; on a small hand-written source always, on the real Mathlib source and
ProofNet-Verified when ../shared/data is present."""

from __future__ import annotations

import json
import subprocess
import tarfile
from pathlib import Path

import pytest
from conftest import SHARED, autoform

from autoform.mathlib.index import MathlibIndex, build, name_words, source_revision
from autoform.mathlib.search import concepts, lookup, plain_bm25, query_words, search
from autoform.mathlib.source import read_declarations, to_additive

SMALL = {
    "Mathlib/Algebra/Group/Defs.lean": """module

public import Mathlib.Init

/-!
# Groups
A module docstring that mentions theorem fake_in_doc : False.
-/

@[expose] public section

universe u

/-- A `Monoid` is a type with an associative multiplication and a one. -/
class Monoid (M : Type u) extends Mul M, One M where
  mul_assoc : ∀ a b c : M, a * b * c = a * (b * c)

/-- A `Group` is a monoid with inverses. -/
class Group (G : Type u) extends Monoid G, Inv G

section CommMonoid
variable {G : Type u} [CommMonoid G]

/-- Multiplication is commutative. -/
@[to_additive "Addition is commutative."]
theorem mul_comm : ∀ a b : G, a * b = b * a := CommMonoid.mul_comm

@[to_additive (attr := simp) add_self_eq_twice]
lemma mul_self_eq_sq (a : G) : a * a = a ^ 2 := by
  simp [pow_two]

end CommMonoid

namespace Nat

/-- `Nat.Prime p` means that `p` is a prime number. -/
def Prime (p : ℕ) : Prop :=
  Irreducible p

theorem Prime.two_le {p : ℕ} (hp : p.Prime) :
    2 ≤ p := hp.two_le'

private theorem secret : True := trivial

instance : Inhabited ℕ := ⟨0⟩

instance instDecidablePrime (p : ℕ) : Decidable p.Prime := inferInstance

/- a comment with
   theorem commented_out : False
-/
theorem _root_.prime_two : Nat.Prime 2 := by decide

end Nat

@[deprecated (since := "2025-01-01")] alias old_mul_comm := mul_comm

@[deprecated Nat.Prime.two_le (since := "2025-02-02")]
theorem Nat.prime_two_le_old {p : ℕ} (hp : p.Prime) : 2 ≤ p := hp.two_le

alias ⟨Prime.mp_name, Prime.mpr_name⟩ := Nat.prime_iff
""",
    "Mathlib/LinearAlgebra/Finrank.lean": """/-- The rank of a module as a natural number. -/
noncomputable def Module.finrank (R M : Type*) [Semiring R] [AddCommGroup M] [Module R M] : ℕ :=
  Cardinal.toNat (Module.rank R M)

@[deprecated (since := "2024-11-11")] alias FiniteDimensional.finrank := Module.finrank

/-- The order of an element. -/
noncomputable def orderOf {G : Type*} [Monoid G] (x : G) : ℕ := 0

namespace Subgroup
/-- The center of a group. -/
def center (G : Type*) [Group G] : Subgroup G := sorry
end Subgroup
""",
}


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    root = tmp_path_factory.mktemp("mathlib-small")
    for rel, text in SMALL.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text, encoding="utf-8")
    index = MathlibIndex(root / "index.sqlite")
    n, rebuilt = build(index, root, workers=1)
    assert rebuilt
    yield root, index
    index.close()


def test_source_reader_names_kinds_docs_and_scopes(small):
    root, index = small
    names = {r[0] for r in index.conn.execute("SELECT name FROM decls")}
    assert {
        "Monoid",
        "Group",
        "mul_comm",
        "add_comm",
        "mul_self_eq_sq",
        "add_self_eq_twice",
        "Nat.Prime",
        "Nat.Prime.two_le",
        "Nat.instDecidablePrime",
        "prime_two",
        "old_mul_comm",
        "Nat.prime_two_le_old",
        "Prime.mp_name",
        "Prime.mpr_name",
        "Module.finrank",
        "FiniteDimensional.finrank",
        "orderOf",
        "Subgroup.center",
    } <= names
    # private, anonymous instances, comments and docstrings declare nothing
    assert not names & {"Nat.secret", "secret", "fake_in_doc", "Nat.commented_out", "commented_out"}
    prime = index.get("Nat.Prime")
    assert prime is not None and prime.kind == "def" and prime.signature == "(p : ℕ) : Prop"
    assert prime.doc.startswith("`Nat.Prime p` means") and prime.module == "Mathlib.Algebra.Group.Defs"
    two_le = index.get("Nat.Prime.two_le")
    assert two_le is not None and two_le.signature == "{p : ℕ} (hp : p.Prime) : 2 ≤ p" and two_le.kind == "theorem"
    assert index.get("add_comm").signature == ": ∀ a b : G, a + b = b + a"  # to_additive's twin
    line = (
        SMALL["Mathlib/Algebra/Group/Defs.lean"]
        .splitlines()
        .index("theorem mul_comm : ∀ a b : G, a * b = b * a := CommMonoid.mul_comm")
        + 1
    )
    assert index.get("Group").kind == "class" and index.get("mul_comm").line == line


def test_deprecated_names_point_to_their_replacement(small):
    _, index = small
    ans = lookup(index, "FiniteDimensional.finrank")
    assert ans.status == "deprecated" and ans.current == "Module.finrank"
    assert ans.hit is not None and ans.hit.name == "Module.finrank"
    ans = lookup(index, "Nat.prime_two_le_old")
    assert ans.status == "deprecated" and ans.current == "Nat.Prime.two_le"
    assert lookup(index, "old_mul_comm").current == "mul_comm"
    assert lookup(index, "Nat.Prime.two_le").status == "exists"
    ans = lookup(index, "Nat.Prime.two_lee")
    assert ans.status == "unknown" and ans.nearest[0] == "Nat.Prime.two_le"


def test_structure_fields_are_declarations(small):
    """A structure's or class's fields are declarations Lean makes from the source (``Monoid.mul_assoc``); a
    deprecated alias may point to one (Mathlib's ``IsAlgClosed.factors := IsAlgClosed.splits``)."""
    _, index = small
    h = index.get("Monoid.mul_assoc")
    assert h is not None and h.kind == "field" and h.signature == ": ∀ a b c : M, a * b * c = a * (b * c)"
    assert h.module == "Mathlib.Algebra.Group.Defs"


def test_the_revision_follows_the_checkout_and_a_job_follows_the_revision(small, tmp_path):
    """The revision holds the git commit Lake checked out (a bump with files of the same sizes is seen);
    :func:`follow_source` rebuilds an index built from that source, never one built with ``--from-lean``."""
    from autoform.mathlib.index import follow_source

    root, _ = small
    git = tmp_path / "src" / ".git"
    git.mkdir(parents=True)
    (tmp_path / "src" / "Mathlib").mkdir()
    (tmp_path / "src" / "Mathlib" / "A.lean").write_text("theorem aaa : True := trivial\n")
    (git / "HEAD").write_text("8f9d9cff" + "0" * 32 + "\n")
    index = MathlibIndex(tmp_path / "i.sqlite")
    try:
        assert build(index, tmp_path / "src", workers=1)[1] and not follow_source(index, tmp_path / "src")
        (git / "HEAD").write_text("1234abcd" + "0" * 32 + "\n")
        (tmp_path / "src" / "Mathlib" / "A.lean").write_text("theorem bbb : True := trivial\n")  # same size
        assert follow_source(index, tmp_path / "src", workers=1)
        assert index.get("bbb") is not None and index.get("aaa") is None
        assert not follow_source(index, root)  # built from another source: left alone
        index.conn.execute("UPDATE meta SET value = 'lean:x' WHERE key = 'mathlib.revision'")
        assert not follow_source(index, tmp_path / "src")  # built from Lean's environment: left alone
    finally:
        index.close()


def test_batteries_and_leans_library_are_indexed_beside_mathlib(workspace, tmp_path):
    """``autoform mathlib index`` also reads Batteries beside Mathlib (Lake's packages folder) and Lean's own
    ``Init`` and ``Std`` in the toolchain elan installed for the project (not the compiler's ``Lean``), so a name
    check knows ``Nat.lt_irrefl``."""
    ws = workspace()
    packages = tmp_path / "packages"
    files = {
        "mathlib/Mathlib/A.lean": "def Nat.Prime (p : ℕ) : Prop := sorry\n",
        "batteries/Batteries/Data/List.lean": "namespace List\ntheorem batteries_lemma : True := trivial\nend List\n",
    }
    toolchain = (ws.home / "lean_project" / "lean-toolchain").read_text().strip()
    core = tmp_path / "elan" / "toolchains" / toolchain.replace("/", "--").replace(":", "---") / "src" / "lean"
    files |= {
        str(core / "Init" / "Prelude.lean"): "namespace Nat\ntheorem lt_irrefl (n : Nat) : ¬n < n := sorry\nend Nat\n",
        str(core / "Lean" / "Elab.lean"): "def Lean.Elab.compilerThing : Nat := 0\n",
    }
    for rel, text in files.items():
        (packages / rel).parent.mkdir(parents=True, exist_ok=True)
        (packages / rel).write_text(text, encoding="utf-8")
    env = {"ELAN_HOME": str(tmp_path / "elan")}
    r = autoform(ws.home, "mathlib", "index", "--source", str(packages / "mathlib"), "--json", env=env, check=True)
    rep = json.loads(r.stdout)
    assert rep["declarations"] == 1 and rep["dependency_declarations"] == 2
    for name, status in (("Nat.lt_irrefl", "exists"), ("List.batteries_lemma", "exists")):
        r = autoform(ws.home, "mathlib", "name", name, "--json", env=env)
        assert json.loads(r.stdout)["status"] == status, r.stdout
    r = autoform(ws.home, "mathlib", "name", "Lean.Elab.compilerThing", "--json", env=env)
    assert r.returncode == 1 and json.loads(r.stdout)["status"] == "unknown"


def test_naming_conventions():
    assert name_words("Nat.Prime.two_le") == ["nat", "prime", "two", "le"]
    assert name_words("IsPrimePow") == ["is", "prime", "pow"]
    assert name_words("finrank") == ["finrank"]
    assert to_additive("Finset.prod_range_succ") == "Finset.sum_range_succ"
    assert to_additive("mul_one") == "add_zero" and to_additive("orderOf_dvd") == "addOrderOf_dvd"
    words = query_words(r"If $a \mid b$ and $b \le c$, the group is commutative and its order divides $n$.")
    assert {"dvd", "le", "group", "comm", "order"} <= set(words)
    assert "and" not in words and "the" not in words


def test_search_ranks_by_names_first(small):
    _, index = small
    assert search(index, "mul_comm", k=3)[0].name == "mul_comm"
    assert search(index, "prime two le", k=3)[0].name == "Nat.Prime.two_le"
    assert search(index, "a * b = b * a commutative", k=3)[0].name in ("mul_comm", "add_comm")
    got = [h.name for h in concepts(index, "Prove that the center of a group of prime order is the group", k=6)]
    assert {"Subgroup.center", "Group", "orderOf", "Nat.Prime"} <= set(got)


def test_the_index_is_rebuilt_only_when_the_source_changes(small, tmp_path):
    root, _ = small
    rev = source_revision(root)
    index = MathlibIndex(tmp_path / "i.sqlite")
    assert build(index, root, workers=1)[1] is True
    assert build(index, root, workers=1)[1] is False
    extra = root / "Mathlib" / "New.lean"
    extra.write_text("theorem brand_new : True := trivial\n")
    try:
        assert source_revision(root) != rev
        n, rebuilt = build(index, root, workers=1)
        assert rebuilt and index.get("brand_new") is not None
    finally:
        extra.unlink()
        index.close()


def test_cli_index_search_batch_and_name(small, tmp_path):
    root, _ = small
    home = tmp_path / "home"
    home.mkdir()
    r = autoform(home, "mathlib", "search", "mul_comm")
    assert r.returncode == 3 and "autoform mathlib index" in r.stderr
    r = autoform(home, "mathlib", "index", "--source", str(root), "--workers", "1", "--json")
    assert r.returncode == 0, r.stderr
    rep = json.loads(r.stdout)
    assert rep["declarations"] >= 18 and rep["rebuilt"] is True
    r = autoform(home, "mathlib", "search", "prime two le", "-k", "2", "--json")
    res = json.loads(r.stdout)["results"]
    assert res[0]["name"] == "Nat.Prime.two_le" and set(res[0]) == {"name", "kind", "signature", "module", "score"}
    queries = tmp_path / "q.txt"
    queries.write_text("mul_comm\n\ncenter of a group\n")
    r = autoform(home, "mathlib", "search", "--batch", str(queries), "-k", "3")
    lines = [json.loads(x) for x in r.stdout.splitlines()]
    assert [x["query"] for x in lines] == ["mul_comm", "center of a group"] and lines[0]["results"]
    r = autoform(home, "mathlib", "name", "FiniteDimensional.finrank")
    assert r.returncode == 0 and "deprecated" in r.stdout and "Module.finrank" in r.stdout
    r = autoform(home, "mathlib", "name", "Nat.Prime.two_lee")
    assert r.returncode == 1 and "Nat.Prime.two_le" in r.stdout


def test_source_reader_edge_cases():
    text = (
        "namespace A.B\n@[simp,\n  norm_cast]\ntheorem t : True := trivial\nend A.B\n"
        "public meta section\ndef f := 1\nend\nprotected def A.g := 2\n"
    )
    ds = {d.name: d for d in read_declarations(text, "M")}
    assert set(ds) == {"A.B.t", "f", "A.g"}
    assert ds["A.B.t"].attrs == ["simp, norm_cast"]


# ----------------------------------------------------------------------------------- the real Mathlib
TARBALL = SHARED / "mathlib" / "mathlib4-8f9d9cff-src.tar.xz"
PROOFNET = SHARED / "benchmarks" / "proofnet-verified" / "proofnet-verified.jsonl"


@pytest.fixture(scope="module")
def real(tmp_path_factory):
    if not TARBALL.is_file():
        pytest.skip(f"{TARBALL} is absent (../shared/data)")
    root = tmp_path_factory.mktemp("mathlib-real")
    with tarfile.open(TARBALL) as tar:
        tar.extractall(root, filter="data")
    index = MathlibIndex(root / "index.sqlite")
    build(index, root, workers=2)
    yield root, index
    index.close()


@pytest.mark.slow
def test_real_mathlib_is_indexed(real):
    _, index = real
    assert index.count("mathlib") > 200_000
    # samples picked by hand from the source
    h = index.get("Nat.Prime.two_le")
    assert h is not None and h.module == "Mathlib.Data.Nat.Prime.Defs" and "2 ≤ p" in h.signature
    h = index.get("Module.finrank")
    assert h is not None and h.kind == "def" and h.doc.startswith("The rank of a module as a natural number")
    assert index.get("Finset.sum_range_succ") is not None  # generated by @[to_additive] from prod_range_succ
    ans = lookup(index, "IsAlgClosed.factors")  # Mathlib/FieldTheory/IsAlgClosed/Basic.lean: deprecated alias
    assert ans.status == "deprecated" and ans.current == "IsAlgClosed.splits"
    assert search(index, "Nat.Prime.two_le", k=1)[0].name == "Nat.Prime.two_le"


@pytest.mark.slow
def test_grounding_finds_what_proofnet_references_use(real):
    """Recall@10 of the declarations ProofNet-Verified's reference statements use, retrieved from the informal
    statements: the concept grounding against plain BM25 over the statement's words."""
    if not PROOFNET.is_file():
        pytest.skip(f"{PROOFNET} is absent")
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))
    from mathlib import reference_names

    _, index = real
    grounding, plain = [], []
    for line in PROOFNET.read_text(encoding="utf-8").splitlines():
        p = json.loads(line)
        ref = reference_names(index, p["header"], p["formal_stmt"])
        if not ref:
            continue
        grounding.append(len(ref & {h.name for h in concepts(index, p["informal_stmt"], k=10)}) / len(ref))
        plain.append(len(ref & {h.name for h in plain_bm25(index, p["informal_stmt"], k=10)}) / len(ref))
    g, b = sum(grounding) / len(grounding), sum(plain) / len(plain)
    assert len(grounding) > 300
    assert g > 0.3 and g > 4 * b, (g, b)


def test_mathlib_benchmark_runs(small, tmp_path):
    root, _ = small
    r = subprocess.run(
        [
            str(Path(__file__).resolve().parent.parent / ".venv" / "bin" / "python"),
            "benchmarks/mathlib.py",
            str(root),
            "--workers",
            "1",
            "--proofnet",
            str(tmp_path / "none"),
        ],
        cwd=Path(__file__).resolve().parent.parent,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode == 0, r.stderr
    rep = json.loads(r.stdout.strip().splitlines()[-1])
    assert rep["declarations"] >= 18 and rep["query_ms_median"] is not None


def run_benchmark(*args: str) -> dict:
    r = subprocess.run(
        [str(Path(__file__).resolve().parent.parent / ".venv" / "bin" / "python"), "benchmarks/mathlib.py", *args],
        cwd=Path(__file__).resolve().parent.parent,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout.strip().splitlines()[-1])


def test_mathlib_benchmark_with_a_scripted_model(small, tmp_path):
    """The recall of a model's names, raw and checked: a scripted model that gets every name wrong (a deprecated
    alias or a near miss, ``--p 0 --q 1``) and invents one a problem retrieves nothing raw; the index's check
    turns the wrong names into the right declarations and lets no invented one through."""
    root, _ = small
    problems = [
        ("P1", "Every prime number is at least two.", "theorem P1 (p : ℕ) (hp : Nat.Prime p) : 2 ≤ p := by sorry"),
        ("P2", "A module over a ring has a rank.", "theorem P2 (R M : Type*) : Module.finrank R M = 0 := by sorry"),
        ("P3", "The order of an element.", "theorem P3 {G : Type*} [Group G] (x : G) : orderOf x = 0 := by sorry"),
    ]
    bench = tmp_path / "proofnet.jsonl"
    bench.write_text(
        "".join(
            json.dumps({"name": n, "header": "import Mathlib", "informal_stmt": i, "formal_stmt": f}) + "\n"
            for n, i, f in problems
        ),
        encoding="utf-8",
    )
    rep = run_benchmark(str(root), "--workers", "1", "--proofnet", str(bench), "--p", "0", "--q", "1", "--r", "1")
    assert rep["problems"] == 3 and rep["invented_names"] == 3 and rep["invented_names_retrieved"] == 0
    assert rep["recall@10_proposed_raw"] == 0.0
    assert rep["recall@10_proposed_checked"] >= 0.75, rep
    assert rep["recall@10_proposed_checked_fused"] >= rep["recall@10_proposed_checked"]
    assert {"recall@10_grounding", "recall@10_plain_bm25", "scripted_model", "note"} <= set(rep)
    # a model that names everything right: the check keeps it all
    rep = run_benchmark(str(root), "--workers", "1", "--proofnet", str(bench), "--p", "1", "--q", "0", "--r", "0")
    assert rep["recall@10_proposed_raw"] == rep["recall@10_proposed_checked"] == 1.0


def test_proposed_names_are_checked_against_the_index(small):
    """Exact; deprecated -> the current name with its signature; the wrong namespace, the other case convention
    or a flattened name -> the right one among the nearest; an invented name -> never a hit itself."""
    from autoform.mathlib.grounding import check_names, checked_ranking, render_checked

    _, index = small
    proposed = ["Nat.Prime", "FiniteDimensional.finrank", "Prime.two_le", "Nat.Prime.twoLe", "Nat.Frobnicate.bogus"]
    checked = check_names(index, proposed)
    assert [c.status for c in checked] == ["exists", "deprecated", "unknown", "unknown", "unknown"]
    assert checked[1].hits[0].name == "Module.finrank" and "Cardinal" not in checked[1].hits[0].signature
    assert checked[2].hits[0].name == "Nat.Prime.two_le" and checked[3].hits[0].name == "Nat.Prime.two_le"
    assert all(h.name != "Nat.Frobnicate.bogus" for c in checked for h in c.hits)
    ranked = [h.name for h in checked_ranking(checked)]
    assert ranked[:3] == ["Nat.Prime", "Module.finrank", "Nat.Prime.two_le"] and "Nat.Frobnicate.bogus" not in ranked
    body = render_checked(checked)
    assert (
        "- `Module.finrank` (def) (R M : Type*)" in body
        and "replaces the deprecated `FiniteDimensional.finrank`" in body
    )
    assert "- `Nat.Frobnicate.bogus`" not in body and "`Nat.Frobnicate.bogus`" in body


# ------------------------------------------------------------------------------------ embeddings fused in
def test_embeddings_rerank_the_lexical_pool(small):
    """A scripted embedder that prefers one declaration moves it up by reciprocal-rank fusion; the pool is the
    lexical one (embeddings re-rank, they find nothing new), and an exact name stays first."""
    from autoform.mathlib.search import fused_search, hit_text

    _, index = small
    lexical = search(index, "commutative", k=50)
    assert len(lexical) >= 2
    favourite = lexical[-1].name

    def embed(texts: list[str]) -> list[list[float]]:  # the query is [1, 0]; the favourite points the same way
        return [[1.0, 0.0]] + [[1.0, 0.0] if t.startswith(favourite + " ") else [0.0, 1.0] for t in texts[1:]]

    fused = fused_search(index, "commutative", embed, k=50)
    assert {h.name for h in fused} == {h.name for h in lexical}
    assert [h.name for h in fused].index(favourite) < [h.name for h in lexical].index(favourite)
    assert fused == sorted(fused, key=lambda h: -h.score)
    assert hit_text(lexical[0]).startswith(lexical[0].name)
    exact = fused_search(index, "mul_comm", lambda texts: [[0.0, 1.0]] + [[1.0, 0.0]] * (len(texts) - 1), k=5)
    assert exact[0].name == "mul_comm"


def test_embeddings_from_the_endpoint_are_fused_and_cached(small, tmp_path):
    """Through the real openai client against the scripted server: the query and the pool are embedded once."""
    from fake_llm import FakeLLM

    from autoform.config import LLMConfig, Settings
    from autoform.llm import LLMClient
    from autoform.mathlib.search import fused_search
    from autoform.store import Store

    _, index = small
    with FakeLLM() as srv:
        s = Settings(home=tmp_path, llm=LLMConfig(base_url=srv.base_url, api_key="k", model="m"))
        llm = LLMClient(s, Store(s.db_path))
        hits = fused_search(index, "multiplication is commutative", lambda t: llm.embed(t, "emb"), k=5)
        assert hits and len(srv.embedding_requests) == 1
        assert srv.embedding_requests[0]["input"][0] == "multiplication is commutative"
        fused_search(index, "multiplication is commutative", lambda t: llm.embed(t, "emb"), k=5)
        assert len(srv.embedding_requests) == 1  # cached in the store by model and text


def test_cli_search_with_embeddings_and_index_from_lean_without_lean(small, tmp_path):
    """`mathlib search --embeddings` asks the configured endpoint (the scripted server here) and keeps the JSON
    shape; `mathlib index --from-lean` without Lean says what is missing (exit 3)."""
    from fake_llm import FakeLLM

    root, _ = small
    home = tmp_path / "home"
    home.mkdir()
    autoform(home, "mathlib", "index", "--source", str(root), "--workers", "1", check=True)
    with FakeLLM() as srv:
        env = {"OPENAI_BASE_URL": srv.base_url, "OPENAI_API_KEY": "k"}
        r = autoform(home, "mathlib", "search", "commutative", "--embeddings", "-k", "3", "--json", env=env)
        assert r.returncode == 0, r.stderr
        res = json.loads(r.stdout)["results"]
        assert res and set(res[0]) == {"name", "kind", "signature", "module", "score"}
        assert srv.embedding_requests and srv.embedding_requests[0]["input"][0] == "commutative"
    r = autoform(home, "mathlib", "index", "--from-lean", env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)})
    assert r.returncode == 3 and "--from-lean needs Lean" in r.stderr
