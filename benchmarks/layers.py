"""Counts of the package's layering, for a closing note or a review: module import cycles,
subpackage cycles, imports of another module's private names, function-local imports, and the
largest modules. Every import statement counts, those inside functions too.

    uv run python benchmarks/layers.py [PACKAGE_DIR]     # default: dnnbench
"""

from __future__ import annotations

import ast
import sys
from collections import defaultdict
from pathlib import Path


def _modules(root: Path) -> dict[str, Path]:
    out = {}
    for p in root.rglob("*.py"):
        parts = list(p.relative_to(root.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = p
    return out


def _target(mod: str, node: ast.ImportFrom, is_package: bool) -> str:
    base = mod.split(".") if is_package else mod.split(".")[:-1]
    if node.level:
        base = base[: len(base) - (node.level - 1)]
        return ".".join(base + ([node.module] if node.module else []))
    return node.module or ""


def scan(root: Path):
    mods = _modules(root)
    edges, private, local, local_own = defaultdict(set), [], 0, 0
    for mod, path in mods.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        in_function = set()
        for fn in ast.walk(tree):
            if isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
                in_function |= {id(n) for n in ast.walk(fn)}
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                targets = [(a.name, None) for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                t = _target(mod, node, path.name == "__init__.py")
                targets = [(f"{t}.{a.name}" if f"{t}.{a.name}" in mods else t, a.name)
                           for a in node.names]
            else:
                continue
            own = [(t, n) for t, n in targets if t.startswith(root.name)]
            if id(node) in in_function:
                local += 1
                local_own += bool(own)
            for t, name in own:
                while t not in mods and "." in t:
                    t = t.rsplit(".", 1)[0]
                if t != mod:
                    edges[mod].add(t)
                    if name and name.startswith("_") and not name.startswith("__"):
                        private.append(f"{mod} <- {t}.{name}")
    return mods, edges, private, local, local_own


def _cycles(edges) -> list[list[str]]:
    """Strongly connected components of more than one node (Tarjan)."""
    index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in edges.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    sys.setrecursionlimit(10_000)
    for v in list(edges):
        if v not in index:
            visit(v)
    return out


def main(root: Path) -> None:
    mods, edges, private, local, local_own = scan(root)
    cycles = _cycles(edges)
    sub = defaultdict(set)
    for a, bs in edges.items():
        for b in bs:
            sa, sb = (m.split(".")[1] if m.count(".") else "" for m in (a, b))
            if sa != sb:
                sub[sa].add(sb)
    pairs = sorted({tuple(sorted((a, b))) for a in sub for b in sub[a] if a in sub.get(b, ())})
    print(f"modules: {len(mods)}")
    print(f"module cycles: {len(cycles)} {[len(c) for c in cycles]}")
    print(f"subpackage 2-cycles: {len(pairs)} {pairs}")
    print(f"private names imported from other modules: {len(private)}")
    print(f"function-local import statements: {local} (of {root.name} modules: {local_own})")
    sizes = sorted(((len(p.read_text(encoding='utf-8').splitlines()), str(p.relative_to(
        root.parent))) for p in mods.values()), reverse=True)[:5]
    print("largest modules: " + ", ".join(f"{name} {n}" for n, name in sizes))


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "dnnbench").resolve())
