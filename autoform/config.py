"""The one typed configuration object, loaded from ``<home>/autoform.toml`` and the environment.

Precedence (highest first): environment (``OPENAI_API_KEY``, ``OPENAI_BASE_URL``, ``AUTOFORM_MODEL``),
``autoform.toml`` in the workspace, the defaults below.
"""

from __future__ import annotations

import json
import os
import textwrap
import tomllib
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, model_validator
from pydantic.fields import FieldInfo

from autoform.errors import UsageError
from autoform.toolchain.memory import ADDRESS_SPACE_MB, RESTART_GROWTH_MB, default_pool_size
from autoform.toolchain.workspace import default_project, find_lake

CONFIG_FILE = "autoform.toml"
DEFAULT_BASE_URL = "https://api.openai.com/v1"


class ConfigError(UsageError):
    """The configuration file is unreadable or holds a wrong value; the message names file and key."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


#: output budget (tokens) of each role's first request when none is configured: prover models write 8-16k-token
#: chains of thought before their proof
ROLE_MAX_TOKENS = {"prover": 16384, "gap_closer": 16384, "drafter": 4096, "critic": 2048, "reader": 2048}
DEFAULT_MAX_TOKENS = 4096
#: a truncated reply is asked again with twice the budget, up to this cap (per role, configurable)
DEFAULT_MAX_TOKENS_CAP = 32768
PromptStyle = Literal["chat", "complete"]
TokenParam = Literal["auto", "max_tokens", "max_completion_tokens"]


class RoleLLM(_Section):
    model: str | None = None
    temperature: float | None = None
    max_tokens: int | None = Field(default=None, ge=1, description="output budget of the role's first request")
    max_tokens_cap: int | None = Field(
        default=None, ge=1, description="largest budget a truncated reply is asked again with"
    )
    prompt_style: PromptStyle | None = Field(
        default=None,
        description="'chat' (agents/<role>/prompt.md) or 'complete' (prompt.complete.md: the plain "
        "'Complete the following Lean 4 code' prompt prover models are trained on; prover and gap_closer)",
    )


class LLMConfig(_Section):
    base_url: str = DEFAULT_BASE_URL
    api_key: str | None = Field(default=None, description="prefer the OPENAI_API_KEY environment variable")
    model: str = "gpt-4o-mini"
    temperature: float = 0.2
    max_tokens: int | None = Field(
        default=None,
        ge=1,
        description="output budget of every role without its own; "
        "default: per role (prover and gap_closer 16384, drafter 4096, others 2048)",
    )
    max_tokens_cap: int | None = Field(
        default=None,
        ge=1,
        description=f"largest budget a truncated reply is asked again with (default {DEFAULT_MAX_TOKENS_CAP})",
    )
    length_retries: int = Field(
        default=2,
        ge=0,
        description="a truncated reply is asked again this many times "
        "with a doubled budget (within the cap), then the agent asks for a shorter answer",
    )
    token_param: TokenParam = Field(
        default="auto",
        description="the request's budget parameter: 'auto' sends max_completion_tokens to the "
        "o-series and GPT-5 (and falls back once on an HTTP 400 that names the parameter), max_tokens elsewhere",
    )
    prompt_style: PromptStyle = "chat"
    timeout_s: float = 120.0
    max_retries: int = 4
    concurrency: int = 4
    format_retries: int = Field(default=2, ge=0, description="re-asks when a reply is malformed or truncated")
    roles: dict[str, RoleLLM] = Field(
        default_factory=dict,
        description="settings of one role (reader, grounder, drafter, critic, prover, gap_closer) in a table "
        "[llm.roles.<role>]; what a role leaves unset comes from [llm]",
    )
    prices: dict[str, tuple[float, float]] = Field(
        default_factory=lambda: {"gpt-4o-mini": (0.15, 0.60), "gpt-4o": (2.50, 10.00)},
        description="model -> (USD per 1M prompt tokens, USD per 1M completion tokens)",
    )

    def model_for(self, role: str) -> str:
        r = self.roles.get(role)
        return r.model if r and r.model else self.model

    def temperature_for(self, role: str) -> float:
        r = self.roles.get(role)
        return r.temperature if r and r.temperature is not None else self.temperature

    def max_tokens_for(self, role: str) -> int:
        r = self.roles.get(role)
        if r and r.max_tokens is not None:
            return r.max_tokens
        if self.max_tokens is not None:
            return self.max_tokens
        return ROLE_MAX_TOKENS.get(role, DEFAULT_MAX_TOKENS)

    def max_tokens_cap_for(self, role: str) -> int:
        r = self.roles.get(role)
        cap = r.max_tokens_cap if r and r.max_tokens_cap is not None else self.max_tokens_cap
        return max(cap if cap is not None else DEFAULT_MAX_TOKENS_CAP, self.max_tokens_for(role))

    def prompt_style_for(self, role: str) -> str:
        r = self.roles.get(role)
        return r.prompt_style if r and r.prompt_style else self.prompt_style

    @property
    def is_openai(self) -> bool:
        return "api.openai.com" in self.base_url


class LeanConfig(_Section):
    backend: Literal["repl", "lake", "kimina"] = "repl"
    project_dir: str = Field(
        default="",
        description="the Lake project where candidates are checked; default: the workspace when it "
        "holds a lakefile, else the repository root (the workspace scripts/setup.sh prepared)",
    )
    lake_path: str = Field(
        default="lake", description="`lake`: looked up on PATH, then in elan's bin directory (~/.elan/bin)"
    )
    repl_path: str | None = Field(
        default=None,
        description="a local leanprover-community/repl checkout, built; default: the one "
        "scripts/setup.sh built (recorded in the project's .lake/autoform-repl.json)",
    )
    header: str = "import Mathlib"
    timeout_s: float = 300.0
    start_timeout_s: float = 900.0
    memory_mb: int = Field(
        default=ADDRESS_SPACE_MB,
        description="RLIMIT_AS of every Lean process, MB "
        "(import Mathlib needs more than 9 GB of address space: autoform/toolchain/memory.py)",
    )
    pool_size: int = Field(
        default_factory=default_pool_size,
        ge=1,
        description="Lean REPL processes at most; default: what the machine's memory holds",
    )
    prewarm: int = Field(default=1, ge=0, description="processes started with the header before the first check")
    max_uses: int = Field(default=200, ge=1, description="checks before a REPL process is restarted")
    restart_growth_mb: int = Field(
        default=RESTART_GROWTH_MB,
        ge=0,
        description="restart a REPL process holding this much more memory than "
        "right after it imported its header; 0: never",
    )
    restart_memory_mb: int = Field(
        default=0,
        ge=0,
        description="also restart a REPL process above this resident memory, MB, but never for "
        "what it held right after the import; 0: no absolute threshold",
    )
    kimina_url: str = "http://127.0.0.1:8000"
    kimina_api: Literal["check", "verify"] = "check"
    kimina_api_key: str | None = Field(default=None, description="prefer the KIMINA_API_KEY environment variable")
    cache: bool = Field(default=True, description="answer identical checks from the store")
    #: how `lake_path` was found (PATH, elan's bin directory, configured)
    _lake_found: str = PrivateAttr(default="")

    @model_validator(mode="after")
    def _resolve_lake(self) -> LeanConfig:
        self.lake_path, self._lake_found = find_lake(self.lake_path)
        return self

    @property
    def lake_found(self) -> str:
        return self._lake_found


class AttentionConfig(_Section):
    budget_tokens: int = Field(default=3000, description="token budget of a role not listed in `budgets`")
    budgets: dict[str, int] = Field(
        default_factory=lambda: {"reader": 1500, "drafter": 2500, "critic": 1000, "prover": 2000, "gap_closer": 3000},
        description="token budget of the blackboard context, per role",
    )
    round_decay: float = 0.3
    hop_decay: float = 1.0
    relevance_floor: float = Field(default=0.25, ge=0, le=1, description="share of the score that needs no overlap")
    unreachable_hops: int = Field(default=6, description="distance given to units not connected to the goal")
    key_sentences: int = 5
    neighborhood_hops: int = Field(
        default=3, ge=0, description="posts of units this close in the dependency graph are candidates for a prompt"
    )
    recent_posts: int = Field(default=64, ge=0, description="the latest posts of other units are candidates too")
    max_candidates: int = Field(default=400, ge=1, description="posts ranked per prompt, at most (own unit first)")
    relevance: Literal["bm25", "embeddings"] = "bm25"
    embedding_model: str = "text-embedding-3-small"

    def budget_for(self, role: str) -> int:
        return self.budgets.get(role, self.budget_tokens)


class JobConfig(_Section):
    max_attempts: int = 3
    jobs: int = 1
    drafts: int = Field(default=2, ge=1, description="candidate statements the drafter proposes per round")
    critique: bool = Field(default=True, description="back-translation critique of each elaborating draft")
    race: int = Field(default=1, ge=1, description="prover attempts raced per unit; the first admitted wins")
    automation: bool = Field(default=True, description="try simp/omega/linarith/... before asking the gap-closer")
    library_search: bool = Field(
        default=True,
        description="try Lean's `exact?` on a locked statement before asking the prover (one Lean check, no LLM call)",
    )
    grounding: bool = Field(
        default=True,
        description="post what the Mathlib index (`autoform mathlib index`) "
        "retrieves for each unit, for the agents to read",
    )
    propose_names: bool = Field(
        default=False,
        description="with grounding: the model first proposes the unit's concepts and Mathlib names (one LLM "
        "call a unit, role 'grounder'); the index checks them and the drafter reads what exists, with signatures",
    )
    decompose: bool = Field(
        default=True,
        description="when whole proofs fail: a sketch whose `have … := by "
        "sorry` holes are proved one by one (autoform/pipeline/decompose.py)",
    )
    lean_failures_to_stop: int = Field(
        default=5,
        ge=1,
        description="consecutive Lean checks with no verdict (crash, garbage, timeout) that stop "
        "the job (exit 3), leaving its units pending",
    )
    formalize_kinds: list[str] = Field(
        default_factory=lambda: [
            "definition",
            "theorem",
            "lemma",
            "proposition",
            "corollary",
            "exercise",
            "claim",
            "axiom",
        ]
    )


class IngestConfig(_Section):
    environments: dict[str, str] = Field(
        default_factory=dict,
        description="environment name -> unit kind, e.g. thm = 'theorem', or 'proof' for a proof environment; "
        "overrides the kind the reader infers from the book's \\newtheorem/\\declaretheorem declarations",
    )
    max_file_mb: float = Field(default=64.0, gt=0, description="largest LaTeX source file read")
    max_units: int = Field(default=50_000, ge=1, description="most theorem-like units in one book")
    max_nesting: int = Field(default=200, ge=1, description="deepest nesting of environments and groups")
    max_expansion: int = Field(
        default=1_000_000,
        ge=1000,
        description="macro expansion steps per book (one a use, "
        "one per 32 characters produced or read), as TeX bounds its stacks",
    )
    max_input_depth: int = Field(default=15, ge=1, description="\\input/\\include files open at once (TeX: 15)")


class ProveConfig(_Section):
    """``[prove]``: how long one unit's proof search may go on. With ``strategy = "budget"`` (the default, or
    ``autoform run --unit-budget``) it goes on, round after round, until one of these limits is reached or it
    stalls; then decomposition, then the unit ends. With ``"attempts"`` (or ``autoform run --max-attempts``
    alone) a proof gets ``[job] max_attempts`` attempts, then decomposition. The defaults suit a paid API on a
    textbook: at most 16 calls and 300k tokens a unit (under $1 at GPT-4.1's list price), cut short by a stall."""

    strategy: Literal["attempts", "budget"] = Field(
        default="budget",
        description="'budget': the limits below (the default); 'attempts': [job] max_attempts proof attempts",
    )
    llm_calls: int = Field(default=16, ge=1, description="LLM calls on one unit (uncached; every role)")
    tokens: int = Field(default=300_000, ge=1, description="tokens (prompt + completion) on one unit")
    lean_checks: int = Field(default=40, ge=1, description="candidates of one unit Lean judges (attempts)")
    wall_s: float = Field(default=1800.0, gt=0, description="seconds of LLM and Lean time on one unit")
    stall_rounds: int = Field(
        default=3, ge=1, description="proof attempts in a row without progress (fewer Lean errors) end the search"
    )
    max_depth: int = Field(
        default=2,
        ge=1,
        description="decomposition depth: 1, a sketch's holes are proved as they are; 2, a hole "
        "that resists is sketched and split again; ... (either strategy)",
    )
    subgoal_llm_calls: int = Field(
        default=4,
        ge=0,
        description="LLM calls on one subgoal of a sketch (its prover, repair and split moves; the holes it is "
        "split into have their own; either strategy)",
    )
    subgoal_lean_checks: int = Field(
        default=6,
        ge=1,
        description="candidates of one subgoal Lean judges (its own, as for lean_checks; either strategy)",
    )
    tactic_mode: bool = Field(
        default=True,
        description="explore a sketch's holes in the REPL's tactic mode (closing tactics, exact?) before whole "
        "candidates are compiled; admission is still a whole-text check ([lean] backend = 'repl' only)",
    )


class Settings(_Section):
    home: Path = Path(".")
    llm: LLMConfig = Field(default_factory=LLMConfig)
    lean: LeanConfig = Field(default_factory=LeanConfig)
    attention: AttentionConfig = Field(default_factory=AttentionConfig)
    job: JobConfig = Field(default_factory=JobConfig)
    prove: ProveConfig = Field(default_factory=ProveConfig)
    ingest: IngestConfig = Field(default_factory=IngestConfig)

    @property
    def db_path(self) -> Path:
        return self.home / "autoform.sqlite"

    @property
    def atlas_dir(self) -> Path:
        return self.home / "atlas"

    @property
    def cache_dir(self) -> Path:
        return self.home / ".autoform-cache"

    @property
    def mathlib_index_path(self) -> Path:
        """The Mathlib declaration index (autoform/mathlib/index.py): derived data, rebuilt from the source."""
        return self.home / "mathlib-index.sqlite"

    @property
    def mathlib_source(self) -> Path:
        """The Mathlib source Lake fetched into the workspace."""
        return self.lean_project / ".lake" / "packages" / "mathlib"

    @property
    def lean_project(self) -> Path:
        """The Lake project candidates are checked in (autoform/toolchain/workspace.py: one workspace)."""
        if not self.lean.project_dir.strip():
            return default_project(self.home)
        p = Path(self.lean.project_dir).expanduser()
        if not p.is_absolute():
            p = self.home / p
        if not p.exists() and not Path(self.lean.project_dir).is_absolute():
            return default_project(self.home)  # e.g. the former `lean_project` of an older autoform.toml
        return p

    @property
    def api_key(self) -> str | None:
        return os.environ.get("OPENAI_API_KEY") or self.llm.api_key


def resolve_home(home: str | Path | None) -> Path:
    """The workspace: --home, else $AUTOFORM_HOME, else the current directory when it holds a
    lakefile.lean, else ./.autoform."""
    if home is None:
        home = os.environ.get("AUTOFORM_HOME") or None
    if home is None:
        cwd = Path.cwd()
        home = cwd if (cwd / "lakefile.lean").exists() else cwd / ".autoform"
    return Path(home).expanduser().resolve()


def load_settings(home: str | Path | None = None) -> Settings:
    root = resolve_home(home)
    data: dict = {}
    cfg = root / CONFIG_FILE
    if cfg.exists():
        try:
            data = tomllib.loads(cfg.read_text(encoding="utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
            raise ConfigError(f"{cfg}: not valid TOML: {e}") from e
    data.pop("home", None)
    llm = data.setdefault("llm", {})
    if os.environ.get("OPENAI_BASE_URL"):
        llm["base_url"] = os.environ["OPENAI_BASE_URL"]
    if os.environ.get("AUTOFORM_MODEL"):
        llm["model"] = os.environ["AUTOFORM_MODEL"]
    try:
        return Settings(home=root, **data)
    except ValidationError as e:
        where = "; ".join(f"[{'.'.join(str(p) for p in err['loc'])}] {err['msg']}" for err in e.errors())
        raise ConfigError(f"{cfg}: {where}") from e


# -- the commented default autoform.toml, rendered from the settings model ------------------------------------

#: the settings `autoform init` writes as values (the rest are comments showing their defaults)
PROMINENT = {"llm": ("base_url", "model"), "lean": ("backend", "header", "timeout_s"), "job": ("max_attempts",)}
#: sections of a dict of sub-sections, documented by an example sub-section
EXAMPLE_SUBSECTIONS = {("llm", "roles"): ("prover", RoleLLM)}
TomlValue = str | int | float | bool | list["TomlValue"] | tuple["TomlValue", ...] | dict[str, "TomlValue"]


def toml_value(value: TomlValue) -> str:
    """``value`` written as TOML (an inline table for a dict, an array for a list or tuple)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)  # a JSON string is a TOML basic string
    if isinstance(value, dict):
        return "{" + ", ".join(f"{json.dumps(k)} = {toml_value(v)}" for k, v in value.items()) + "}"
    return "[" + ", ".join(toml_value(v) for v in value) + "]"


def _comment(text: str) -> list[str]:
    return [f"# {line}" for line in textwrap.wrap(text, 100)]


def _field_lines(name: str, field: FieldInfo, *, active: bool) -> list[str]:
    """A setting: its description as comments (after a blank line), then ``name = default``, commented out
    unless ``active``; a setting unset by default says so in a comment."""
    lines = ["", *_comment(field.description)] if field.description else []
    default = field.get_default(call_default_factory=True)
    if default is None:
        return [*lines, f"# {name}: unset by default"]
    if isinstance(default, Path):
        default = str(default)
    return [*lines, f"{'' if active else '# '}{name} = {toml_value(default)}"]


def _section_lines(section: str, model: type[BaseModel]) -> list[str]:
    """A ``[section]`` with each of its settings; a table of sub-sections (``[llm.roles.<role>]``) is shown
    last, as an example sub-section commented out."""
    lines, examples = [f"[{section}]"], []
    for name, field in model.model_fields.items():
        example = EXAMPLE_SUBSECTIONS.get((section, name))
        if example is None:
            lines += _field_lines(name, field, active=name in PROMINENT.get(section, ()))
            continue
        sub, sub_model = example
        examples += ["", *_comment(field.description or name), f"# [{section}.{name}.{sub}]"]
        examples += [line for n, f in sub_model.model_fields.items() for line in _field_lines(n, f, active=False)]
    return lines + examples


def render_default_toml() -> str:
    """The commented ``autoform.toml`` that ``autoform init`` writes: every setting of :class:`Settings` with
    its description and default (commented out, but for a few prominent ones that are written as values), so
    the file cannot fall behind the settings model."""
    lines = [
        "# autoform workspace configuration. Environment variables OPENAI_API_KEY and OPENAI_BASE_URL override [llm].",
        "# Every setting is shown with its default; uncomment a line to change it.",
    ]
    for section, field in Settings.model_fields.items():
        model = field.annotation
        if isinstance(model, type) and issubclass(model, BaseModel):
            lines += ["", *_section_lines(section, model)]
    return "\n".join(lines) + "\n"


# ------------------------------------------------------------------ what the command line changes of the settings
#: the limits of ``[prove]`` a budget given on the command line may name (``run --unit-budget``, ``retry --budget``)
BUDGET_LIMITS = (
    "llm_calls",
    "tokens",
    "lean_checks",
    "wall_s",
    "stall_rounds",
    "subgoal_llm_calls",
    "subgoal_lean_checks",
)


def with_unit_budget(s: Settings, text: str | None, *, max_attempts: int | None = None) -> Settings:
    """The settings with ``--unit-budget``'s limits in ``[prove]``; without it, ``--max-attempts`` asks for the
    attempts strategy; unchanged without either (``autoform run`` and ``autoform eval``)."""
    if text is not None:
        return s.model_copy(update={"prove": parse_unit_budget(s.prove, text)})
    if max_attempts is not None:
        return s.model_copy(update={"prove": s.prove.model_copy(update={"strategy": "attempts"})})
    return s


def parse_unit_budget(prove: ProveConfig, text: str, option: str = "--unit-budget") -> ProveConfig:
    """``[prove]`` with the limits of ``text`` (``name=value,...``, given as ``option``) and the budget strategy;
    a wrong name or value is a :class:`UsageError` naming the option."""
    update: dict[str, object] = {"strategy": "budget"}
    for part in (p.strip() for p in text.split(",") if p.strip()):
        name, sep, value = part.partition("=")
        name = name.strip()
        if not sep or name not in BUDGET_LIMITS:
            names = ", ".join(sorted(BUDGET_LIMITS))
            raise UsageError(f"{option}: {part!r} is not NAME=VALUE with NAME one of {names}")
        update[name] = value.strip()
    try:
        return ProveConfig.model_validate(prove.model_dump() | update)
    except ValidationError as e:
        first = e.errors()[0]
        raise UsageError(f"{option}: {first['loc'][0]}: {first['msg']}") from e
