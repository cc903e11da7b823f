/-
autoform: the declarations of the modules under the given roots (default `Mathlib`), read from Lean's own
environment, one JSON object a line on stdout:

  {"name", "kind", "type", "module", "line", "doc", "deprecated", "deprecated_to"}

`type` is the elaborated type as Lean pretty-prints it; `line` is where the declaration starts (0 when Lean
keeps no range for it). Internal names (`_proof_i`, `match_i`, private names), auxiliary recursors and
`noConfusion` are left out; the names Lean generates for users (`Foo.ext_iff`, `Foo.mk.injEq`, equation lemmas
under their public names) are kept.

Run by `autoform mathlib index --from-lean` as `lake env lean --run DumpDecls.lean [ROOT ...]`.
-/
import Lean

open Lean Meta

/-- The kind of a constant, in the words of autoform's index. -/
def kindOf (n : Name) (ci : ConstantInfo) : MetaM String := do
  let env ← getEnv
  match ci with
  | .thmInfo _ => return "theorem"
  | .defnInfo _ => return if (← isInstance n) then "instance" else "def"
  | .axiomInfo _ => return "axiom"
  | .opaqueInfo _ => return "def"
  | .quotInfo _ => return "def"
  | .inductInfo _ =>
    return if isClass env n then "class" else if isStructure env n then "structure" else "inductive"
  | .ctorInfo _ => return "constructor"
  | .recInfo _ => return "recursor"

/-- Whether a constant is noise for a search index. -/
def skipped (env : Environment) (n : Name) (ci : ConstantInfo) : Bool :=
  n.isInternalDetail || isAuxRecursor env n || isNoConfusion env n ||
    (match ci with
     | .recInfo _ => true
     | _ => false)

/-- A type as Lean pretty-prints it, on one line ("" when printing fails). -/
def ppType (e : Expr) : MetaM String := do
  try
    return (← ppExpr e).pretty 100000
  catch _ =>
    return ""

/-- One declaration as a JSON line. -/
def declJson (mod : Name) (n : Name) (ci : ConstantInfo) : MetaM Json := do
  let env ← getEnv
  let type ← ppType ci.type
  let line := match (← findDeclarationRanges? n) with
    | some r => r.range.pos.line
    | none => 0
  let doc := (← findDocString? env n).getD ""
  let newName := match Linter.getDeprecatedNewName env n with
    | some m => Json.str m.toString
    | none => Json.null
  return Json.mkObj [
    ("name", Json.str n.toString),
    ("kind", Json.str (← kindOf n ci)),
    ("type", Json.str type),
    ("module", Json.str mod.toString),
    ("line", toJson line),
    ("doc", Json.str doc),
    ("deprecated", toJson (Linter.isDeprecated env n)),
    ("deprecated_to", newName)]

/-- The declarations of one module, printed as they are read. -/
def dumpModule (mod : Name) (data : ModuleData) : MetaM Unit := do
  let env ← getEnv
  for (n, ci) in data.constNames.zip data.constants do
    if skipped env n ci then
      continue
    IO.println (← declJson mod n ci).compress

def main (args : List String) : IO UInt32 := do
  let roots : List Name := if args.isEmpty then [`Mathlib] else args.map String.toName
  initSearchPath (← findSysroot)
  enableInitializersExecution
  let env ← importModules (roots.toArray.map fun m => { module := m }) {}
  let ctx : Core.Context := { fileName := "<autoform>", fileMap := default, maxHeartbeats := 0 }
  let mut failed : UInt32 := 0
  for (mod, data) in env.header.moduleNames.zip env.header.moduleData do
    unless roots.any (·.isPrefixOf mod) do
      continue
    try
      -- one MetaM run per module: its caches do not grow over the whole library
      discard <| (dumpModule mod data |>.run').toIO ctx { env }
    catch e =>
      IO.eprintln s!"{mod}: {e}"
      failed := 1
  return failed
