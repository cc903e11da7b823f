"""What every agent shares: prompt files rendered with Jinja2, context from the blackboard through the
attention filter, one chat call through :class:`autoform.llm.LLMClient`, and a post of what it did."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import jinja2

from autoform import attention
from autoform.blackboard import Blackboard
from autoform.config import Settings
from autoform.llm import ChatReply, LLMClient, MalformedReply, Message
from autoform.replies import Truncated, split_reasoning
from autoform.store import Post, Unit

T = TypeVar("T")

PROMPTS = Path(__file__).resolve().parent
_env = jinja2.Environment(
    loader=jinja2.FileSystemLoader(str(PROMPTS)),
    undefined=jinja2.StrictUndefined,
    keep_trailing_newline=True,
    autoescape=False,
)


@dataclass
class AgentRun:
    """Everything an agent needs to act on one unit."""

    settings: Settings
    llm: LLMClient
    board: Blackboard
    unit: Unit
    hops: dict[int, int]
    round: int = 0
    namespace: str = ""
    deps_lean: list[dict[str, str]] = field(default_factory=list)  # admitted dependency declarations
    deps_stated: list[dict[str, str]] = field(default_factory=list)  # dependencies with a statement, no proof
    pinned_ids: set[int] = field(default_factory=set)


class Agent:
    role: str = ""
    #: the blackboard post kinds this agent may read
    reads: tuple[str, ...] = ()
    #: prompt files, under agents/<prompt_dir or role>/
    prompt_dir: str = ""
    system_file: str = "system.md"
    prompt_file: str = "prompt.md"

    def goal(self, run: AgentRun) -> str:
        u = run.unit
        return f"{u.display} {u.title} {u.statement}"

    def render(self, run: AgentRun, ctx: attention.Context, **extra: Any) -> list[Message]:
        variables = {
            "unit": run.unit,
            "namespace": run.namespace,
            "deps": run.deps_lean,
            "deps_stated": run.deps_stated,
            "context": ctx.render(),
            "key_context": ctx.render_key(),
            "header": run.settings.lean.header,
            **extra,
        }
        folder = self.prompt_dir or self.role
        system_file, prompt_file = self.prompt_files(run)
        system = _env.get_template(f"{folder}/{system_file}").render(**variables)
        user = _env.get_template(f"{folder}/{prompt_file}").render(**variables)
        return [Message(role="system", content=system.strip()), Message(role="user", content=user.strip())]

    def prompt_files(self, run: AgentRun) -> tuple[str, str]:
        """(system, prompt) files for the role's ``prompt_style`` (``[llm.roles.<role>] prompt_style``): style
        ``S`` reads ``prompt.S.md`` and ``system.S.md`` where the agent has them, its chat prompts otherwise."""
        style = run.settings.llm.prompt_style_for(self.role)
        if style == "chat":
            return self.system_file, self.prompt_file
        folder = PROMPTS / (self.prompt_dir or self.role)

        def styled(name: str) -> str:
            stem, ext = name.rsplit(".", 1)
            candidate = f"{stem}.{style}.{ext}"
            return candidate if (folder / candidate).exists() else name

        return styled(self.system_file), styled(self.prompt_file)

    def context(self, run: AgentRun) -> attention.Context:
        cfg = run.settings.attention
        budget = cfg.budget_for(self.role)
        posts = run.board.nearby(
            run.unit.id,
            run.hops,
            self.reads,
            max_hops=cfg.neighborhood_hops,
            recent=cfg.recent_posts,
            limit=cfg.max_candidates,
            fill_tokens=budget,
        )
        posts = [p for p in posts if p.kind != "hint" or p.unit_id in (None, run.unit.id)]  # a unit's hints are its own
        relevance = run.llm.embedding_relevance(cfg.embedding_model) if cfg.relevance == "embeddings" else None
        return attention.select(
            posts,
            self.goal(run),
            goal_unit=run.unit.id,
            current_round=run.round,
            hops=run.hops,
            cfg=cfg,
            budget_tokens=budget,
            pinned_ids=run.pinned_ids | _pinned_for(run, posts),
            relevance=relevance,
        )

    def ask(self, run: AgentRun, **extra: Any) -> tuple[ChatReply, attention.Context]:
        ctx = self.context(run)
        req = run.llm.request(self.role, self.render(run, ctx, **extra), posts_used=ctx.post_ids)
        reply = run.llm.chat(req, job_id=run.board.job_id, unit_id=run.unit.id)
        return reply, ctx

    def ask_parsed(
        self, run: AgentRun, parse: Callable[[str], T], **extra: Any
    ) -> tuple[T, ChatReply, attention.Context]:
        """Ask, and parse the reply's final answer (:mod:`autoform.replies`); a malformed reply is asked again
        with what was wrong, a truncated one (the client already tried larger budgets) with a request for a
        shorter answer, up to ``[llm] format_retries`` times, then MalformedReply is raised. Never admitted."""
        ctx = self.context(run)
        messages = self.render(run, ctx, **extra)
        tries = run.settings.llm.format_retries + 1
        for k in range(tries):
            req = run.llm.request(self.role, messages, posts_used=ctx.post_ids)
            try:
                reply = run.llm.chat(req, job_id=run.board.job_id, unit_id=run.unit.id)
            except Truncated as e:
                if k == tries - 1:
                    raise
                messages = [
                    *messages,
                    Message(
                        role="user",
                        content=(
                            f"Your reply was cut off before it ended ({e}). Answer again, much more briefly: keep your "
                            "reasoning short and give only what was asked for, in the format asked for."
                        ),
                    ),
                ]
                continue
            try:
                return parse(reply.text), reply, ctx
            except MalformedReply as e:
                if k == tries - 1:
                    raise
                # the answer only goes back: a reasoning model's thoughts are not sent to it again
                answer = split_reasoning(reply.text).text or "(no answer after the reasoning)"
                messages = [
                    *messages,
                    Message(role="assistant", content=answer),
                    Message(
                        role="user",
                        content=f"Your reply could not be used: {e}. Answer again, exactly in the format asked for.",
                    ),
                ]
        raise AssertionError("unreachable")


def _pinned_for(run: AgentRun, posts: list[Post]) -> set[int]:
    """The unit's own lock and latest verdict always enter the prompt."""
    own = [p for p in posts if p.unit_id == run.unit.id]
    pinned = {p.id for p in own if p.kind == "lock"}
    verdicts = [p for p in own if p.kind == "verdict"]
    if verdicts:
        pinned.add(verdicts[-1].id)
    return pinned
