#!/usr/bin/env python3
"""Prints the crate's top-level module graph from its `crate::` paths and fails on a cycle.

Usage: .ci/modgraph.py [--check] [SRC_DIR]

A top-level module is a file or folder directly under src/ (lib.rs and main.rs are the roots and
left out). An edge A -> B is any `crate::B` path in A's code outside its `#[cfg(test)]` part,
including the members of grouped imports (`use crate::{b::X, c}`); files that are only compiled
for tests (declared as `#[cfg(test)] mod x;`) are test code too. Printed: each module with what
it uses, every strongly connected component of more than one module (an import cycle), and the
files whose code (test modules excluded) is over 800 lines. With --check the exit code is 1 when
there is a cycle or such a file.
"""
import os
import re
import sys

LIMIT = 800


def top_level_paths(code):
    """Every first segment after `crate::`, grouped imports unfolded."""
    found = set()
    for m in re.finditer(r"\bcrate::([a-z_][a-z0-9_]*)", code):
        found.add(m.group(1))
    # `crate::{a, b::{c, d}, e::F}`: the first segment of each top-level member of the group.
    for m in re.finditer(r"\bcrate::\{", code):
        depth, start, members, i = 1, m.end(), [], m.end()
        while i < len(code) and depth:
            ch = code[i]
            if ch == "{":
                depth += 1
            elif ch == "}":
                depth -= 1
                if depth == 0:
                    members.append(code[start:i])
            elif ch == "," and depth == 1:
                members.append(code[start:i])
                start = i + 1
            i += 1
        for member in members:
            name = re.match(r"\s*([a-z_][a-z0-9_]*)", member)
            if name and name.group(1) not in ("self", "super"):
                found.add(name.group(1))
    return found


def strongly_connected(nodes, edges):
    index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]
    sys.setrecursionlimit(10000)

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(edges.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    for v in sorted(nodes):
        if v not in index:
            visit(v)
    return out


def main(argv):
    check = "--check" in argv
    rest = [a for a in argv if a != "--check"]
    src = rest[0] if rest else "src"
    modules, edges, big = set(), {}, []
    test_only = set()
    for root, _, files in os.walk(src):
        for name in files:
            if not name.endswith(".rs"):
                continue
            path = os.path.join(root, name)
            with open(path, encoding="utf-8", errors="replace") as f:
                text = f.read()
            here = root if name in ("mod.rs", "lib.rs", "main.rs") else os.path.join(root, name[:-3])
            for m in re.finditer(r"#\[cfg\(test\)\]\s*(?:pub(?:\([^)]*\))?\s+)?mod\s+(\w+)\s*;", text):
                test_only.add(os.path.join(here, m.group(1) + ".rs"))
                test_only.add(os.path.join(here, m.group(1), "mod.rs"))
    for root, _, files in os.walk(src):
        for name in sorted(files):
            if not name.endswith(".rs"):
                continue
            path = os.path.join(root, name)
            if path in test_only:
                continue
            rel = os.path.relpath(path, src)
            top = rel.split(os.sep)[0].removesuffix(".rs")
            if top in ("lib", "main"):
                continue
            modules.add(top)
            with open(path, encoding="utf-8", errors="replace") as f:
                code = f.read().split("#[cfg(test)]")[0]
            lines = code.count("\n")
            if lines > LIMIT:
                big.append(f"{rel}: {lines} code lines")
            for dst in top_level_paths(code):
                if dst != top:
                    edges.setdefault(top, set()).add(dst)
    known = {d for d in modules}
    for top in edges:
        edges[top] &= known
    for top in sorted(modules):
        print(f"{top} -> {', '.join(sorted(edges.get(top, ()))) or '(nothing)'}")
    cycles = strongly_connected(modules, edges)
    for c in cycles:
        print("cycle:", " ".join(c))
    for b in big:
        print("big file:", b)
    print(
        f"modules: {len(modules)}, cycles: {len(cycles)}, "
        f"modules in cycles: {sum(len(c) for c in cycles)}, files over {LIMIT} code lines: {len(big)}"
    )
    return 1 if check and (cycles or big) else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
