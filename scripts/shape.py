"""The code's shape, as issue 15 measures it: longest classes and functions, blocks rated D or worse by radon,
modules that write SQL, and import cycles between the package's modules.

    python scripts/shape.py [--json]

Radon (``pip install radon``, in the ``dev`` extra) rates cyclomatic complexity; a block rated D or worse that
carries a ``# complexity:`` comment on its first lines is listed as explained. The SQL count is of modules outside
the stores (``autoform/store/``, and the Mathlib index, which owns a database of its own) that contain an SQL
statement. The last line is JSON.
"""

from __future__ import annotations

import argparse
import ast
import json
import re
import subprocess
import sys
from pathlib import Path

import networkx as nx

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("autoform", "agents")
#: modules that own an SQLite database of their own
STORES = ("autoform/store/", "autoform/mathlib/index.py")
SQL = re.compile(r"""["'](?:\s*)(SELECT\s|INSERT\s|UPDATE\s|DELETE\s+FROM|CREATE\s|ALTER\s|PRAGMA\s)""", re.I)
EXPLAINED = re.compile(r"#\s*complexity:")


def sources() -> list[Path]:
    return sorted(p for pkg in PACKAGES for p in (ROOT / pkg).rglob("*.py"))


def rel(p: Path) -> str:
    return p.relative_to(ROOT).as_posix()


def blocks() -> list[dict]:
    rows = []
    for p in sources():
        text = p.read_text()
        lines = text.splitlines()
        for n in ast.walk(ast.parse(text)):
            if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                start = n.decorator_list[0].lineno if n.decorator_list else n.lineno
                head = "\n".join(lines[start - 1 : n.body[0].lineno + 2])
                rows.append(
                    {
                        "where": f"{rel(p)}:{n.lineno}",
                        "name": n.name,
                        "kind": "class" if isinstance(n, ast.ClassDef) else "function",
                        "lines": n.end_lineno - n.lineno + 1,
                        "explained": bool(EXPLAINED.search(head)),
                    }
                )
    return rows


def radon_blocks() -> list[dict]:
    out = subprocess.run(
        [sys.executable, "-m", "radon", "cc", "-j", *PACKAGES], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout
    rows = []
    for path, items in json.loads(out).items():
        for it in items:  # methods are listed at the top level too (with their class), and inside their class
            name = f"{it['classname']}.{it['name']}" if it.get("classname") else it["name"]
            rows.append({"where": f"{path}:{it['lineno']}", "name": name, "rank": it["rank"],
                         "complexity": it["complexity"]})  # fmt: skip
    return rows


def sql_modules() -> dict[str, int]:
    found = {}
    for p in sources():
        r = rel(p)
        if r.startswith(STORES):
            continue
        n = len(SQL.findall(p.read_text()))
        if n:
            found[r] = n
    return found


def module_name(p: Path) -> str:
    parts = list(p.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_cycles() -> list[list[str]]:
    """Cycles among module-level imports (function-local imports counted too: they hide a cycle, not remove it)."""
    mods = {module_name(p): p for p in sources()}
    g = nx.DiGraph()
    for name, p in mods.items():
        g.add_node(name)
        for n in ast.walk(ast.parse(p.read_text())):
            targets: list[str] = []
            if isinstance(n, ast.ImportFrom) and n.module and n.level == 0:
                targets = [n.module] + [f"{n.module}.{a.name}" for a in n.names]
            elif isinstance(n, ast.Import):
                targets = [a.name for a in n.names]
            for t in targets:
                if t in mods and t != name and not name.startswith(t + "."):
                    g.add_edge(name, t)
    return [sorted(c) for c in nx.simple_cycles(g)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", action="store_true", help="print only the JSON line")
    args = ap.parse_args()
    bl = blocks()
    rb = radon_blocks()
    bad = [b for b in rb if b["rank"] in "DEF"]
    lines_by_where = {b["where"]: b for b in bl}
    bad_unexplained = [b for b in bad if not lines_by_where.get(b["where"], {}).get("explained")]
    long_functions = [b for b in bl if b["kind"] == "function" and b["lines"] > 60]
    sql = sql_modules()
    cycles = import_cycles()
    avg = sum(b["complexity"] for b in rb) / max(len(rb), 1)
    summary = {
        "longest_classes": [
            (b["where"], b["name"], b["lines"]) for b in sorted(bl, key=lambda b: -b["lines"]) if b["kind"] == "class"
        ][:5],  # fmt: skip
        "longest_functions": [
            (b["where"], b["name"], b["lines"])
            for b in sorted(bl, key=lambda b: -b["lines"])
            if b["kind"] == "function"
        ][:5],  # fmt: skip
        "functions_over_60_lines": len(long_functions),
        "functions_over_60_lines_unexplained": sum(1 for b in long_functions if not b["explained"]),
        "blocks_d_or_worse": len(bad),
        "blocks_d_or_worse_unexplained": len(bad_unexplained),
        "average_complexity": round(avg, 2),
        "modules_with_sql_outside_stores": len(sql),
        "sql_statements_outside_stores": sum(sql.values()),
        "import_cycles": len(cycles),
    }
    if not args.json:
        for key in ("longest_classes", "longest_functions"):
            print(key.replace("_", " ") + ":")
            for where, name, n in summary[key]:
                print(f"  {n:5d}  {name}  ({where})")
        print("D or worse:")
        for b in sorted(bad, key=lambda b: -b["complexity"]):
            mark = " (explained)" if b not in bad_unexplained else ""
            print(f"  {b['rank']} {b['complexity']:3d}  {b['name']}  ({b['where']}){mark}")
        print("SQL outside the stores:", ", ".join(f"{k} ({v})" for k, v in sorted(sql.items())) or "none")
        print("import cycles:", "; ".join(" <-> ".join(c) for c in cycles) or "none")
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
