"""The package's module import graph (module-level and function-level imports,
read from the source with ``ast``) has no cycles: imports point one way, from the
foundations up to the models."""

import ast
import pathlib

import mlejax

ROOT = pathlib.Path(mlejax.__file__).parent


def _module_name(path):
    parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _resolve(module, node, is_package):
    """The absolute names a ``from ... import`` / ``import`` node refers to."""
    if isinstance(node, ast.Import):
        return [a.name for a in node.names]
    if node.level == 0:
        base = node.module
    else:
        pkg = module.split(".") if is_package else module.split(".")[:-1]
        pkg = pkg[: len(pkg) - (node.level - 1)]
        base = ".".join(pkg + ([node.module] if node.module else []))
    # "from . import dist" imports the submodule base.dist
    return [base] + [f"{base}.{a.name}" for a in node.names]


def import_graph():
    modules = {_module_name(p): p for p in ROOT.rglob("*.py")}
    graph = {}
    for name, path in modules.items():
        tree = ast.parse(path.read_text(), filename=str(path))
        deps = set()
        for node in ast.walk(tree):  # every import, at module level or inside a function
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                for target in _resolve(name, node, path.name == "__init__.py"):
                    if target in modules and target != name:
                        deps.add(target)
        graph[name] = deps
    return graph


def _find_cycle(graph, ignore_packages):
    """A cycle as a list of modules, or None. An edge into a package's ``__init__``
    from inside that package (re-exports) is left out when ``ignore_packages``."""
    state, stack = {}, []

    def edges(m):
        for d in sorted(graph[m]):
            if ignore_packages and m.startswith(d + "."):
                continue
            yield d

    def visit(m):
        state[m] = 1
        stack.append(m)
        for d in edges(m):
            if state.get(d) == 1:
                return stack[stack.index(d):] + [d]
            if d not in state:
                cyc = visit(d)
                if cyc:
                    return cyc
        stack.pop()
        state[m] = 2
        return None

    for m in sorted(graph):
        if m not in state:
            cyc = visit(m)
            if cyc:
                return cyc
    return None


def test_every_module_parses_and_the_graph_covers_the_package():
    graph = import_graph()
    assert {"mlejax", "mlejax._fit", "mlejax.dist._families", "mlejax.mixture._mixture"} <= set(graph)
    assert "mlejax.dist._families" in graph["mlejax.mixture._mixture"]  # edges are found


def test_module_import_graph_is_acyclic():
    cycle = _find_cycle(import_graph(), ignore_packages=True)
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_the_cycle_finder_finds_a_cycle():
    assert _find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}, False) == ["a", "b", "c", "a"]
    assert _find_cycle({"a": {"b"}, "b": set()}, False) is None
