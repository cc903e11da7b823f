"""The four agents. Each folder holds its prompt files (system.md, prompt.md) and the Python that drives it."""

from agents.base import Agent, AgentRun
from agents.drafter import Critique, Drafter, FidelityCritic
from agents.gap_closer import GapCloser
from agents.prover import Prover, Sketcher
from agents.reader import Reader

__all__ = ["Agent", "AgentRun", "Reader", "Drafter", "FidelityCritic", "Critique", "Prover", "Sketcher", "GapCloser"]
