import Lake
open Lake DSL

/-! The Atlas: the Lean library autoform writes from its store (`atlas/`).
`Atlas` holds only what Lean proved; `AtlasStated` holds statements admitted without proof (with `sorry`). -/

package autoform

-- Mathlib is shared with lean_project/ (one download): scripts/setup.sh fetches it there first.
require mathlib from "lean_project" / ".lake" / "packages" / "mathlib"

@[default_target]
lean_lib Atlas where
  srcDir := "atlas"
  roots := #[`Atlas]

lean_lib AtlasStated where
  srcDir := "atlas"
  roots := #[`AtlasStated]
