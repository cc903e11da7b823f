"""What autoform knows about the installed Lean toolchain before it talks to Lean: where ``lake`` is, the Lake
workspace and what setup builds in it (:mod:`~autoform.toolchain.workspace`), and how much memory a Lean process
needs (:mod:`~autoform.toolchain.memory`). The configuration's defaults come from here, so nothing here reads the
configuration; talking to Lean is :mod:`autoform.lean`'s."""
