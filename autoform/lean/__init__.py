"""Talking to Lean. The protocol (:mod:`~autoform.lean.oracle`: the result types and the :class:`Oracle` interface),
one module per backend (:mod:`~autoform.lean.repl_pool`, :mod:`~autoform.lean.lake`, :mod:`~autoform.lean.kimina`),
the result cache (:mod:`~autoform.lean.cache`), and the admission gate (:mod:`~autoform.lean.gate`, with its
pre-screen in :mod:`~autoform.lean.prescreen`). :func:`make_oracle` is the configured backend."""

from __future__ import annotations

from autoform.config import Settings
from autoform.lean.cache import CachedOracle
from autoform.lean.kimina import KiminaOracle
from autoform.lean.lake import LakeFileOracle
from autoform.lean.oracle import Oracle, OracleUnavailable
from autoform.lean.repl_pool import ReplPool
from autoform.store import Store

__all__ = ["Oracle", "OracleUnavailable", "make_oracle"]


def make_oracle(settings: Settings, store: Store | None = None) -> Oracle:
    """The backend ``[lean] backend`` names (``repl``, ``lake``, ``kimina``); with a store, wrapped in the Lean
    result cache."""
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
