"""The configured oracle: the backend ``[lean] backend`` names (``repl``, ``lake``, ``kimina``), wrapped in the Lean
result cache when a store is given. Kept apart from the protocol (:mod:`autoform.lean.oracle`), which every
backend imports, so that no module imports its own importers."""

from __future__ import annotations

from typing import Any

from autoform.config import Settings
from autoform.lean.cache import CachedOracle
from autoform.lean.kimina import KiminaOracle
from autoform.lean.lake import LakeFileOracle
from autoform.lean.oracle import Oracle
from autoform.lean.repl_pool import ReplPool


def make_oracle(settings: Settings, store: Any = None) -> Oracle:
    """The configured backend; with a store, wrapped in the result cache."""
    oracle: Oracle
    if settings.lean.backend == "lake":
        oracle = LakeFileOracle(settings)
    elif settings.lean.backend == "kimina":
        oracle = KiminaOracle(settings)
    else:
        oracle = ReplPool(settings)
    if store is not None:
        oracle = CachedOracle(oracle, store, settings)
    return oracle
