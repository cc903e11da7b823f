import Lake
open Lake DSL

/-! The Lean workspace where autoform compiles candidates (through the Lean REPL or `lake env lean`).
Pinned: the toolchain in lean-toolchain, Mathlib at the matching release tag. -/

package autoform_candidates

require mathlib from git "https://github.com/leanprover-community/mathlib4" @ "v4.24.0"
