"""Mathlib index benchmark: build the index of a Mathlib checkout, time queries, and measure how well the
grounding step retrieves, from ProofNet-Verified's informal statements, the declarations their reference Lean
statements use (recall@10), side by side in one run:

* **concept grounding** (no model): the statement split into concepts, each looked up among Mathlib's notions;
* **search**: the statement as one query of the index's lexical ranking; **plain BM25**: its words, OR'ed;
* **a model proposing names**, checked by the index. The model is *scripted*, not a real one: a stand-in served
  by ``tests/fake_llm.py`` and reached through the real :class:`autoform.llm.LLMClient` with the grounder's real
  prompt (``agents/grounder/``); its replies are read by the real reply reader and its names checked by the real
  :func:`autoform.mathlib.grounding.check_names`. For each problem (seeded by ``--seed`` and the problem's
  name), for each reference declaration: proposed correctly with probability ``--p`` (0.6); with ``--q`` (0.25)
  proposed wrong: as a deprecated alias of it when Mathlib has one, else as a near miss (the wrong namespace,
  the last component in the other case convention, ``is``/``Is`` added or dropped, or a flattened name); omitted
  otherwise; plus ``--r`` (2) invented names that do not exist. Reported: recall@10 of the raw proposals
  (unchecked), of the proposals after checking, and of the checked proposals fused with the concept grounding.
  This measures the checking mechanism, not a real model's knowledge of Mathlib.

    python benchmarks/mathlib.py SOURCE_DIR [--proofnet FILE] [--workers 2] [--limit N] [--p 0.6 --q 0.25 --r 2]
                                            [--index FILE]

SOURCE_DIR is a Mathlib checkout (for example ../shared/data/mathlib's tarball unpacked, or
.lake/packages/mathlib). The last line printed is JSON.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from agents.grounder import standalone_messages  # noqa: E402
from autoform.config import LLMConfig, Settings  # noqa: E402
from autoform.llm import LLMClient  # noqa: E402
from autoform.mathlib.grounding import check_names, checked_ranking  # noqa: E402
from autoform.mathlib.index import Hit, MathlibIndex, build, name_words  # noqa: E402
from autoform.mathlib.search import concepts, lookup, plain_bm25, search  # noqa: E402
from autoform.replies import parse_name_proposals  # noqa: E402
from autoform.store import Unit  # noqa: E402

DEFAULT_PROOFNET = ROOT.parent / "shared" / "data" / "benchmarks" / "proofnet-verified" / "proofnet-verified.jsonl"
_IDENT = re.compile(r"(?<![\w.'])[A-Za-z_][\w']*(?:\.[A-Za-z_][\w']*)*")
SAMPLE_QUERIES = (
    "mul_comm",
    "Nat.Prime.two_le",
    "a * b = b * a",
    "sum of a geometric series",
    "continuous function on a compact set is bounded",
)


def reference_names(index: MathlibIndex, header: str, formal: str) -> set[str]:
    """The Mathlib declarations a reference statement uses: its identifiers resolved as Lean would, directly
    or through the header's ``open`` namespaces (binders and local names resolve to nothing and drop out)."""
    opens = [
        ns
        for line in header.splitlines()
        if line.startswith("open ") and " scoped " not in line
        for ns in line.split()[1:]
    ]
    head = formal.split(":= by", 1)[0]
    head = head.split(" ", 2)[2] if head.startswith(("theorem ", "lemma ")) else head  # not its own name
    found: set[str] = set()
    for tok in set(_IDENT.findall(head)):
        for cand in [tok, *(f"{ns}.{tok}" for ns in opens)]:
            hit = index.get(cand)
            if hit is not None and hit.kind != "instance":
                found.add(hit.name)
                break
    return found


def recall(ref: set[str], got: list[str], k: int) -> float:
    return len(ref & set(got[:k])) / len(ref)


# ------------------------------------------------------------------------------------------ the scripted model
def _camel(word: str) -> str:
    parts = word.split("_")
    return parts[0] + "".join(p[:1].upper() + p[1:] for p in parts[1:])


def _snake(word: str) -> str:
    return "_".join(name_words(word))


def near_misses(name: str) -> list[str]:
    """Spellings of ``name`` a model gets wrong: the wrong namespace (dropped, or swapped for a neighbour's), the
    last component in the other case convention, ``is``/``Is`` added or dropped, a flattened name."""
    parts = name.split(".")
    last, spaces = parts[-1], parts[:-1]
    out = []
    if spaces:
        out.append(".".join(parts[1:]))  # the namespace dropped: `Prime.two_le`
        swap = {"Nat": "Int", "Int": "Nat", "Real": "Complex", "Complex": "Real", "Subgroup": "Group"}
        out.append(".".join([swap.get(spaces[0], "Set"), *parts[1:]]))
        out.append(".".join(spaces[:-1] + [f"{spaces[-1][:1].lower()}{spaces[-1][1:]}_{last}"]))  # flattened
    other = _camel(last) if "_" in last else _snake(last) if re.search(r"[a-z][A-Z]", last) else ""
    if other and other != last:
        out.append(".".join([*spaces, other]))
    if last[:2] == "Is" and last[2:3].isupper():
        out.append(".".join([*spaces, last[2:]]))
    elif last[:1].isupper():
        out.append(".".join([*spaces, "Is" + last]))
    return [n for n in dict.fromkeys(out) if n and n != name]


def invented(ref: list[str], informal: str, rng: random.Random) -> str:
    """A name that looks like Mathlib's and does not exist: a reference's namespace with words of the statement."""
    words = [w.lower() for w in re.findall(r"[A-Za-z]{4,}", informal)] or ["thing"]
    space = rng.choice([r.rsplit(".", 1)[0] for r in ref if "." in r] or ["Mathlib"])
    return f"{space}.{rng.choice(words)}_{rng.choice(words)}_of_{rng.choice(words)}"


class ScriptedModel:
    """The stand-in grounder: per problem (by the label in its prompt), the names drawn as the module docstring
    says, answered as a reasoning model would (its thoughts, then the JSON in a fence)."""

    def __init__(self, index: MathlibIndex, *, p: float, q: float, r: int, seed: int) -> None:
        self.index, self.p, self.q, self.r, self.seed = index, p, q, r, seed
        self.replies: dict[str, str] = {}
        self.invented: set[str] = set()
        self.aliases: dict[str, list[str]] = {}
        for old in index.deprecated_names():
            ans = lookup(index, old)
            if ans.current:
                self.aliases.setdefault(ans.current, []).append(old)

    def prepare(self, label: str, ref: set[str], informal: str) -> None:
        rng = random.Random(f"{self.seed}:{label}")
        names: list[str] = []
        for name in rng.sample(sorted(ref), len(ref)):
            u = rng.random()
            if u < self.p:
                names.append(name)
            elif u < self.p + self.q:
                wrong = self.aliases.get(name) or [n for n in near_misses(name) if self.index.get(n) is None]
                if wrong:
                    names.append(rng.choice(wrong))
        for _ in range(self.r):
            fake = invented(sorted(ref), informal, rng)
            if self.index.get(fake) is None:
                self.invented.add(fake)
                names.insert(rng.randint(0, len(names)), fake)
        body = json.dumps({"concepts": [], "names": names})
        self.replies[label] = f"<think>Which Mathlib names does this use?</think>\n```json\n{body}\n```"

    def __call__(self, body: dict) -> str:
        m = re.search(r"\[label: ([^\]]+)\]", body["messages"][-1]["content"])
        return self.replies.get(m.group(1) if m else "", '```json\n{"concepts": [], "names": []}\n```')


# ------------------------------------------------------------------------------------------------ the arms
def without_model(index: MathlibIndex, problems: list[dict], k: int) -> tuple[dict[str, list[float]], list[float]]:
    """Recall of the concept grounding, the search and plain BM25, and the query times (ms)."""
    rec: dict[str, list[float]] = {"grounding": [], "search": [], "plain_bm25": []}
    times: list[float] = []
    for p in problems:
        ref, text = p["_ref"], p["informal_stmt"]
        for arm, fn in (("grounding", concepts), ("search", search), ("plain_bm25", plain_bm25)):
            t = time.monotonic()
            got = fn(index, text, k=k)
            if arm != "plain_bm25":
                times.append((time.monotonic() - t) * 1000)
            rec[arm].append(recall(ref, [h.name for h in got], k))
    for q in SAMPLE_QUERIES:
        t = time.monotonic()
        search(index, q, k=k)
        times.append((time.monotonic() - t) * 1000)
    return rec, times


def fuse(first: list[Hit], then: list[Hit]) -> list[str]:
    return list(dict.fromkeys([h.name for h in first] + [h.name for h in then]))


def with_model(index: MathlibIndex, problems: list[dict], args: argparse.Namespace) -> dict[str, object]:
    """Recall of the scripted model's names: raw, checked by the index, and checked then fused with the
    concept grounding; the names are asked through the real client and read by the real reply reader."""
    from fake_llm import FakeLLM

    model = ScriptedModel(index, p=args.p, q=args.q, r=args.r, seed=args.seed)
    for p in problems:
        model.prepare(p["name"], p["_ref"], p["informal_stmt"])
    rec: dict[str, list[float]] = {"proposed_raw": [], "proposed_checked": [], "proposed_checked_fused": []}
    leaked = proposed = exist = 0
    with FakeLLM(model) as srv:
        s = Settings(llm=LLMConfig(base_url=srv.base_url, api_key="x", model="scripted-grounder", max_retries=0))
        llm = LLMClient(s)
        for p in problems:
            unit = Unit(id=0, book_id=0, ident=p["name"], seq=0, kind="exercise", label=p["name"],
                        statement=p["informal_stmt"])  # fmt: skip
            reply = llm.chat(llm.request("grounder", standalone_messages(s, unit)))
            names = parse_name_proposals(reply.text).names
            checked = checked_ranking(check_names(index, names))
            proposed += len(names)
            exist += sum(index.get(n) is not None for n in names)
            leaked += len(model.invented & {h.name for h in checked})
            rec["proposed_raw"].append(recall(p["_ref"], names, args.k))
            rec["proposed_checked"].append(recall(p["_ref"], [h.name for h in checked], args.k))
            fused = fuse(checked, concepts(index, p["informal_stmt"], k=args.k))
            rec["proposed_checked_fused"].append(recall(p["_ref"], fused, args.k))
    return {
        "recall": rec,
        "proposed_names": proposed,
        "proposed_existing_share": round(exist / proposed, 4) if proposed else None,
        "invented_names": len(model.invented),
        "invented_names_retrieved": leaked,
    }


def load_problems(index: MathlibIndex, path: Path, limit: int) -> list[dict]:
    """ProofNet-Verified's problems whose reference uses at least one indexed declaration (``_ref``)."""
    if not path.is_file():
        return []
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    problems = []
    for p in rows[:limit] if limit else rows:
        p["_ref"] = reference_names(index, p.get("header", ""), p["formal_stmt"])
        if p["_ref"]:
            problems.append(p)
    return problems


def build_index(path: Path, source: Path, workers: int) -> tuple[MathlibIndex, dict[str, object]]:
    index = MathlibIndex(path)
    t0 = time.monotonic()
    n, _ = build(index, source, workers=workers, force=True)
    build_s = time.monotonic() - t0
    usage = (resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN))
    peak_mb = max(u.ru_maxrss for u in usage) / 1024
    size_mb = path.stat().st_size / 2**20
    print(
        f"indexed {n} declarations in {build_s:.1f} s, index {size_mb:.0f} MB, peak {peak_mb:.0f} MB", file=sys.stderr
    )
    return index, {
        "declarations": n,
        "build_s": round(build_s, 1),
        "peak_mb": round(peak_mb),
        "index_mb": round(size_mb),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("source", type=Path)
    ap.add_argument("--proofnet", type=Path, default=DEFAULT_PROOFNET)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--limit", type=int, default=0)
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--p", type=float, default=0.6, help="scripted model: a reference name proposed correctly")
    ap.add_argument("--q", type=float, default=0.25, help="scripted model: proposed as a deprecated alias/near miss")
    ap.add_argument("--r", type=int, default=2, help="scripted model: invented names per problem")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--index", type=Path, help="an index already built from SOURCE_DIR (no build measured)")
    args = ap.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        if args.index:
            index, report = MathlibIndex(args.index), {"declarations": MathlibIndex(args.index).count("mathlib")}
        else:
            index, report = build_index(Path(tmp) / "mathlib.sqlite", args.source, max(1, args.workers))
        problems = load_problems(index, args.proofnet, args.limit)
        rec, times = without_model(index, problems, args.k)
        model = with_model(index, problems, args) if problems else {"recall": {}}
        index.close()
    rec |= model.pop("recall")  # type: ignore[arg-type]
    times.sort()
    report |= {
        "query_ms_median": round(statistics.median(times), 2) if times else None,
        "query_ms_p95": round(times[int(0.95 * (len(times) - 1))], 2) if times else None,
        "problems": len(problems),
        **{f"recall@{args.k}_{name}": round(statistics.mean(v), 4) if v else None for name, v in rec.items()},
        **model,
        "scripted_model": {"p": args.p, "q": args.q, "r": args.r, "seed": args.seed},
        "note": "the model is scripted (tests/fake_llm.py through LLMClient): this measures the checking, not a model",
    }
    for name, v in rec.items():
        print(f"recall@{args.k} {name:24s} {statistics.mean(v) if v else float('nan'):.3f}", file=sys.stderr)
    print(json.dumps(report))


if __name__ == "__main__":
    main()
