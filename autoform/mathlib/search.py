"""Searching the Mathlib index: lexical ranking that knows Mathlib's naming conventions, name checks, and the
concepts of an informal statement.

* :func:`search` ranks declarations for a query, Lean-ish (``mul_comm``, ``Nat.Prime.two_le``, ``a * b = b * a``)
  or informal ("the order of an element divides the order of the group"): the query is turned into the words
  Mathlib's names are built from (``divides`` -> ``dvd``, ``≤`` -> ``le``, ``commutative`` -> ``comm``), and
  BM25 over name words (weighted most), signature words and docstrings ranks the declarations.
* :func:`concepts` grounds an informal statement: it splits it into concepts (the notions a statement is
  made of: "subgroup", "order", "center", "prime number") and looks each up among definitions, classes and
  structures by name, fusing the per-concept rankings (reciprocal rank fusion). A whole-statement query finds
  almost nothing, because a statement's words are mostly not the words of the declarations it uses.
* :func:`lookup` answers a name: it exists, it is deprecated (with its current name), or the nearest names.
"""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Callable

from pydantic import BaseModel, Field

from autoform.mathlib.index import SYMBOL_WORDS, Hit, MathlibIndex, name_words, notion_key

#: symbols that name an operation in informal text too (``a \mid b``, ``a \le b`` are LaTeX commands, read
#: separately); ``|``, ``!`` and ``-`` are too ambiguous in prose to count
_SYMBOL = re.compile(
    "|".join(
        re.escape(s)
        for s in sorted(SYMBOL_WORDS, key=len, reverse=True)
        if s not in ("|", "!", "-", "/", "%", ">", "<", "*", "+", "^")
    )
)
#: words of informal mathematics -> the words Mathlib's names use for the notion (naming conventions)
CONVENTION = {
    "commutative": "comm",
    "commute": "comm",
    "commutes": "comm",
    "abelian": "comm",
    "associative": "assoc",
    "divides": "dvd",
    "divisible": "dvd",
    "divisor": "dvd",
    "divisors": "divisors",
    "less": "lt",
    "greater": "lt",
    "equal": "eq",
    "equals": "eq",
    "smaller": "lt",
    "larger": "lt",
    "most": "le",
    "least": "le",
    "sum": "sum",
    "product": "prod",
    "power": "pow",
    "square": "sq",
    "squares": "sq",
    "root": "sqrt",
    "inverse": "inv",
    "identity": "one",
    "zero": "zero",
    "negative": "neg",
    "positive": "pos",
    "nonnegative": "nonneg",
    "converges": "tendsto",
    "convergent": "tendsto",
    "limit": "tendsto",
    "continuous": "continuous",
    "differentiable": "differentiable",
    "derivative": "deriv",
    "integral": "integral",
    "integrable": "integrable",
    "injective": "injective",
    "surjective": "surjective",
    "bijective": "bijective",
    "homomorphism": "hom",
    "isomorphism": "equiv",
    "isomorphic": "equiv",
    "kernel": "ker",
    "image": "range",
    "cardinality": "card",
    "number": "card",
    "elements": "card",
    "center": "center",
    "centre": "center",
    "order": "order",
    "cyclic": "cyclic",
    "generated": "closure",
    "generates": "closure",
    "span": "span",
    "dimension": "finrank",
    "dimensional": "finite",
    "determinant": "det",
    "trace": "trace",
    "eigenvalue": "eigenvalue",
    "eigenvector": "eigenvector",
    "polynomial": "polynomial",
    "degree": "degree",
    "irreducible": "irreducible",
    "prime": "prime",
    "primes": "prime",
    "integer": "int",
    "integers": "int",
    "natural": "nat",
    "naturals": "nat",
    "rational": "rat",
    "rationals": "rat",
    "real": "real",
    "reals": "real",
    "complex": "complex",
    "congruent": "modeq",
    "modulo": "mod",
    "remainder": "mod",
    "gcd": "gcd",
    "lcm": "lcm",
    "factorial": "factorial",
    "binomial": "choose",
    "subgroup": "subgroup",
    "subgroups": "subgroup",
    "normal": "normal",
    "quotient": "quotient",
    "coset": "coset",
    "cosets": "coset",
    "index": "index",
    "sylow": "sylow",
    "ideal": "ideal",
    "ideals": "ideal",
    "maximal": "maximal",
    "field": "field",
    "ring": "ring",
    "module": "module",
    "vector": "module",
    "space": "space",
    "linear": "linear",
    "matrix": "matrix",
    "matrices": "matrix",
    "metric": "metric",
    "distance": "dist",
    "compact": "compact",
    "connected": "connected",
    "open": "open",
    "closed": "closed",
    "closure": "closure",
    "interior": "interior",
    "dense": "dense",
    "bounded": "bounded",
    "cauchy": "cauchy",
    "uniformly": "uniform",
    "uniform": "uniform",
    "sequence": "seq",
    "series": "summable",
    "summable": "summable",
    "finite": "finite",
    "infinite": "infinite",
    "countable": "countable",
    "measurable": "measurable",
    "measure": "measure",
    "topological": "topological",
    "hausdorff": "t2",
    "even": "even",
    "odd": "odd",
    "unit": "unit",
    "units": "units",
    "group": "group",
    "groups": "group",
    "permutation": "perm",
    "sign": "sign",
    "automorphism": "aut",
    "orbit": "orbit",
    "stabilizer": "stabilizer",
    "fixed": "fixed",
    "conjugate": "conj",
    "monic": "monic",
    "separable": "separable",
    "algebraic": "algebraic",
    "extension": "extension",
    "galois": "galois",
    "norm": "norm",
    "orthogonal": "orthogonal",
    "inner": "inner",
    "basis": "basis",
    "independent": "independent",
    "nilpotent": "nilpotent",
    "solvable": "solvable",
    "simple": "simple",
    "exponential": "exp",
    "log": "log",
    "logarithm": "log",
    "sine": "sin",
    "cosine": "cos",
    "absolute": "abs",
    "floor": "floor",
    "ceiling": "ceil",
    "max": "max",
    "maximum": "max",
    "min": "min",
    "minimum": "min",
    "supremum": "sup",
    "infimum": "inf",
    "union": "union",
    "intersection": "inter",
    "subset": "subset",
    "complement": "compl",
    "empty": "empty",
    "function": "fun",
    "composition": "comp",
    "periodic": "periodic",
    "monotone": "monotone",
    "increasing": "monotone",
    "decreasing": "antitone",
    "convex": "convex",
    "zeros": "roots",
    "roots": "roots",
}
#: LaTeX commands -> the naming convention's words
LATEX = {
    "le": "le",
    "leq": "le",
    "ge": "le",
    "geq": "le",
    "lt": "lt",
    "neq": "ne",
    "ne": "ne",
    "mid": "dvd",
    "sum": "sum",
    "prod": "prod",
    "in": "mem",
    "notin": "mem",
    "subseteq": "subset",
    "subset": "subset",
    "cap": "inter",
    "cup": "union",
    "cdot": "mul",
    "times": "mul",
    "frac": "div",
    "sqrt": "sqrt",
    "int": "integral",
    "lim": "tendsto",
    "infty": "top",
    "circ": "comp",
    "equiv": "modeq",
    "pmod": "mod",
    "bmod": "mod",
    "gcd": "gcd",
    "log": "log",
    "exp": "exp",
    "sin": "sin",
    "cos": "cos",
    "det": "det",
    "ker": "ker",
    "binom": "choose",
    "mathbb": "",
    "mathbf": "",
    "mathrm": "",
    "left": "",
    "right": "",
    "lfloor": "floor",
    "rfloor": "",
    "lceil": "ceil",
    "rceil": "",
    "partial": "deriv",
    "nabla": "gradient",
    "forall": "",
    "exists": "",
    "to": "",
    "mapsto": "",
    "cong": "equiv",
    "simeq": "equiv",
    "otimes": "tensor",
    "oplus": "sum",
    "perp": "orthogonal",
    "langle": "inner",
    "rangle": "",
    "overline": "closure",
}
STOP = frozenset(
    [
        "a",
        "an",
        "the",
        "of",
        "and",
        "or",
        "to",
        "in",
        "on",
        "at",
        "by",
        "for",
        "with",
        "from",
        "as",
        "is",
        "are",
        "be",
        "been",
        "being",
        "that",
        "this",
        "these",
        "those",
        "it",
        "its",
        "if",
        "then",
        "else",
        "let",
        "suppose",
        "assume",
        "show",
        "prove",
        "proof",
        "given",
        "such",
        "there",
        "exists",
        "exist",
        "every",
        "all",
        "any",
        "each",
        "some",
        "which",
        "who",
        "whose",
        "where",
        "when",
        "we",
        "us",
        "our",
        "you",
        "your",
        "i",
        "one",
        "two",
        "three",
        "no",
        "not",
        "also",
        "only",
        "both",
        "either",
        "neither",
        "into",
        "onto",
        "over",
        "under",
        "between",
        "than",
        "more",
        "has",
        "have",
        "had",
        "do",
        "does",
        "can",
        "may",
        "must",
        "will",
        "would",
        "should",
        "let's",
        "following",
        "holds",
        "hold",
        "true",
        "false",
        "statement",
        "iff",
        "element",
        "elements",
        "set",
        "sets",
        "x",
        "y",
        "z",
        "n",
        "m",
        "k",
        "f",
        "g",
        "h",
        "p",
        "q",
        "denote",
        "denotes",
        "defined",
        "define",
        "call",
        "called",
        "say",
        "says",
    ]
)
#: kinds that name notions (what a statement is made of); theorems are what a proof uses
NOTION_KINDS = ("def", "class", "structure", "inductive", "alias")


def query_words(text: str) -> list[str]:
    """The naming convention's words for ``text``: LaTeX commands and symbols mapped, informal words mapped
    or kept (plural ``s`` dropped), stop words and single letters dropped, order kept, no repeats."""
    words: list[str] = []
    t = re.sub(r"\$+", " ", text)
    for m in re.finditer(r"\\([A-Za-z]+)", t):
        w = LATEX.get(m.group(1))
        if w:
            words.append(w)
    t = re.sub(r"\\[A-Za-z]+", " ", t)
    for m in _SYMBOL.finditer(t):
        words.append(SYMBOL_WORDS[m.group(0)])
    for raw in re.findall(r"[A-Za-z][A-Za-z0-9_.']*", t):
        parts = name_words(raw) if ("_" in raw or "." in raw or re.search(r"[a-z][A-Z]", raw)) else [raw.lower()]
        for w in parts:
            if w in STOP or len(w) < 2:
                continue
            mapped = (
                CONVENTION.get(w) or CONVENTION.get(w.rstrip("s")) or (w[:-1] if w.endswith("s") and len(w) > 3 else w)
            )
            if mapped:
                words.append(mapped)
    return list(dict.fromkeys(words))


def _quote(word: str) -> str:
    return '"' + word.replace('"', '""') + '"'


def _match(words: list[str], columns: str = "") -> str:
    terms = " OR ".join('"' + w.replace('"', '""') + '"' for w in words)
    return f"{columns} : ({terms})" if columns else terms


#: a query keeps at most this many words, the rarest first: the common ones (``eq``, ``le``, ``add``) rank little
#: and cost much (every declaration that holds them is scored)
MAX_QUERY_WORDS = 5


#: a word held by more declarations than this is left out of a query that has rarer ones
COMMON_DF = 5000


def informative(index: MathlibIndex, words: list[str]) -> list[str]:
    """The query's words the index holds, the rarest first: at most ``MAX_QUERY_WORDS``, and none held by more
    than ``COMMON_DF`` declarations unless the query has no rarer word (then its two rarest)."""
    df = index.document_frequency(words)
    known = sorted((w for w in words if df.get(w)), key=lambda w: df[w])
    rare = [w for w in known if df[w] <= COMMON_DF]
    return (rare or known[:2])[:MAX_QUERY_WORDS]


def search(index: MathlibIndex, query: str, *, k: int = 10, kinds: tuple[str, ...] | None = None) -> list[Hit]:
    """The ``k`` best declarations for ``query`` (a name, Lean, or informal text)."""
    name_like = re.fullmatch(r"[A-Za-z_][\w.']*", query.strip()) is not None
    exact = index.get(query.strip()) if name_like else None
    words = informative(index, query_words(query))
    hits: list[Hit] = []
    if name_like and len(words) > 1:  # a name: the names with all its words first (few rows to rank, fast)
        hits = index.fts(" AND ".join(_quote(w) for w in words), limit=k, kinds=kinds, prior=0.5)
    if len(hits) < k and words:
        more = index.fts(_match(words), limit=k, kinds=kinds, prior=0.5)
        hits += [h for h in more if h.name not in {x.name for x in hits}]
    if exact is not None:
        hits = [exact.model_copy(update={"score": max([h.score for h in hits] + [0.0]) + 1.0})] + [
            h for h in hits if h.name != exact.name
        ][: k - 1]
    return hits[:k]


#: the reciprocal-rank constant of fusion (Cormack et al. 2009: 60 works across collections)
RRF_K = 60
#: Embeddings of a batch of texts (an OpenAI-compatible endpoint's /embeddings, e.g. :meth:`LLMClient.embed`)
Embedder = Callable[[list[str]], list[list[float]]]


def hit_text(h: Hit) -> str:
    """What a declaration says, as the embedding model reads it: its name, signature and docstring."""
    return f"{h.name} {h.signature} {h.doc}"[:1000]


def _cosine(a: list[float], b: list[float]) -> float:
    na, nb = math.sqrt(sum(x * x for x in a)) or 1.0, math.sqrt(sum(x * x for x in b)) or 1.0
    return sum(x * y for x, y in zip(a, b, strict=False)) / (na * nb)


def fused_search(index: MathlibIndex, query: str, embed: Embedder, *, k: int = 10, pool: int = 50) -> list[Hit]:
    """:func:`search` with embeddings fused in: the ``pool`` best lexical hits are ranked again by the cosine
    similarity of their embedding to the query's, and the two rankings are fused by reciprocal rank (an exact
    name stays first). Embeddings re-rank what the index finds; they cannot find what no word matches."""
    lexical = search(index, query, k=pool)
    if len(lexical) < 2:
        return lexical[:k]
    vecs = embed([query, *(hit_text(h) for h in lexical)])
    similarity = [_cosine(vecs[0], v) for v in vecs[1:]]
    by_meaning = sorted(range(len(lexical)), key=lambda i: -similarity[i])
    fused = [1.0 / (RRF_K + 1 + i) for i in range(len(lexical))]
    for rank, i in enumerate(by_meaning):
        fused[i] += 1.0 / (RRF_K + 1 + rank)
    exact = query.strip()
    order = sorted(range(len(lexical)), key=lambda i: (lexical[i].name != exact, -fused[i]))
    return [lexical[i].model_copy(update={"score": round(fused[i], 6)}) for i in order[:k]]


def plain_bm25(index: MathlibIndex, query: str, *, k: int = 10) -> list[Hit]:
    """The baseline: the query's own words, OR'ed, BM25 over every column with equal weights, all kinds."""
    words = [w.lower() for w in re.findall(r"[A-Za-z]{2,}", re.sub(r"\\[A-Za-z]+", " ", query))]
    words = list(dict.fromkeys(words))
    return index.fts(_match(words), limit=k, weights=(1.0, 1.0, 1.0)) if words else []


class Concept(BaseModel):
    phrase: str
    words: list[str]
    hits: list[Hit] = Field(default_factory=list)


def split_concepts(statement: str) -> list[list[str]]:
    """The concepts of an informal statement: each content word in the convention's form, and each pair of
    adjacent content words (``normal subgroup``, ``prime number``, ``vector space``), in order."""
    words = query_words(statement)
    singles = [[w] for w in words]
    pairs = [[a, b] for a, b in zip(words, words[1:], strict=False)]
    return pairs + singles


def concepts(
    index: MathlibIndex, statement: str, *, k: int = 10, per_concept: int = 3, extra_names: list[str] | None = None
) -> list[Hit]:
    """Declarations for the notions of ``statement``: each concept is looked up among the notions (definitions,
    classes, structures) named by exactly its words (``order`` finds ``orderOf``, ``center`` finds
    ``Subgroup.center``), the most used first; the per-concept lists are fused by reciprocal rank, a pair of
    words counting more than one word. ``extra_names`` (names a model proposed) that exist come first."""
    scores: dict[str, float] = {}
    best: dict[str, Hit] = {}
    for c in split_concepts(statement):
        found = index.notions(" ".join(c), kinds=NOTION_KINDS, limit=per_concept)
        if not found and len(c) == 1:  # no notion of that exact name: the best-known names that contain it
            found = index.fts(
                _match(c, "name_words"), limit=per_concept, kinds=NOTION_KINDS, weights=(1.0, 0.0, 0.0), prior=1.0
            )
        weight = 2.0 if len(c) > 1 else 1.0
        for r, h in enumerate(found):
            scores[h.name] = scores.get(h.name, 0.0) + weight / (10 + r)
            best.setdefault(h.name, h)
    ranked = sorted(best.values(), key=lambda h: (-scores[h.name], len(h.name)))
    for h in ranked:
        h.score = round(scores[h.name], 5)
    proposed: list[Hit] = []
    for name in extra_names or []:
        got = lookup(index, name)
        if got.hit is not None:
            proposed.append(got.hit)
    out = list({h.name: h for h in [*proposed, *ranked]}.values())
    return out[:k]


class NameAnswer(BaseModel):
    name: str
    status: str  # exists | deprecated | unknown
    hit: Hit | None = None
    current: str | None = None  # for a deprecated name, what to use instead
    nearest: list[str] = Field(default_factory=list)


def lookup(index: MathlibIndex, name: str, *, n: int = 5) -> NameAnswer:
    """Does ``name`` exist? Deprecated (and then what replaces it)? Else the nearest existing names."""
    name = name.strip()
    row = index.deprecation(name)
    if row is not None:
        hit = index.get(name)
        deprecated, current = row
        if deprecated:
            if current and "." not in current and "." in name:  # a target written relative to the namespace
                ns = name.rsplit(".", 1)[0]
                if index.get(f"{ns}.{current}") is not None:
                    current = f"{ns}.{current}"
            target = index.get(current) if current else None
            return NameAnswer(name=name, status="deprecated", hit=target or hit, current=current)
        return NameAnswer(name=name, status="exists", hit=hit)
    words = name_words(name)
    pool: list[str] = []
    for take in range(len(words), 0, -1):  # names sharing the most words first (a misspelling is one word)
        for part in (words[:take], words[-take:]):
            pool = index.names_with_words(part, limit=400)
            if pool:
                break
        if pool:
            break
    short = name.rsplit(".", 1)[-1]
    by_full = difflib.get_close_matches(name, pool, n=n, cutoff=0.5)
    by_short = [p for p in pool if p.rsplit(".", 1)[-1] == short]
    nearest = list(dict.fromkeys(_same_notion(index, name) + by_short + by_full))[:n]
    return NameAnswer(name=name, status="unknown", nearest=nearest)


def _same_notion(index: MathlibIndex, name: str, *, n: int = 3) -> list[str]:
    """Names whose last component is ``name``'s up to case convention and ``is``/``of`` (``FiniteDimensional.finrank``
    -> ``Module.finrank``, ``Nat.Prime.twoLe`` -> ``Nat.Prime.two_le``, ``Subgroup.isNormal`` ->
    ``Subgroup.Normal``): those sharing most namespace words with ``name`` first, then the most used."""
    found = index.names_of_notion(notion_key(name))
    if not found:
        return []
    spaces = set(name_words(name.rsplit(".", 1)[0])) if "." in name else set()
    short = name_words(name.rsplit(".", 1)[-1])
    order = sorted(
        range(len(found)),
        key=lambda i: (
            -len(spaces & set(name_words(found[i].rsplit(".", 1)[0] if "." in found[i] else ""))),
            name_words(found[i].rsplit(".", 1)[-1]) != short,
            i,
        ),
    )
    return [found[i] for i in order[:n]]
