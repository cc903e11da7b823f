import Lake
open Lake DSL

/-! The one Lake workspace of autoform (autoform/lean/workspace.py).

* Mathlib comes from git at the pinned release tag; `lake-manifest.json` (committed) pins the commit of Mathlib
  and of each of its dependencies, and `lean-toolchain` the matching Lean release: bump all three together.
* `scripts/setup.sh` runs `lake exe cache get` here once (Mathlib's prebuilt cache), `lake build Mathlib` (what
  the checks import), builds the Lean REPL, then `lake build` (the Atlas, on the cached Mathlib).
* Candidates are checked here (`lake env` runs the REPL and `lean` in this workspace).
* The Atlas: `Atlas` holds only what Lean proved; `AtlasStated` holds statements admitted without proof
  (with `sorry`). Both are default targets: `lake build` (and `leanblueprint all`, which runs it before
  `checkdecls` looks up the blueprint's `\lean` names) builds both. Every module is elaborated without
  auto-bound implicits, as the gate checks candidates. -/

package autoform where
  leanOptions := #[⟨`autoImplicit, false⟩, ⟨`relaxedAutoImplicit, false⟩]

require mathlib from git "https://github.com/leanprover-community/mathlib4" @ "v4.28.0"

@[default_target]
lean_lib Atlas where
  srcDir := "atlas"
  roots := #[`Atlas]

@[default_target]
lean_lib AtlasStated where
  srcDir := "atlas"
  roots := #[`AtlasStated]
