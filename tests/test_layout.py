"""The package layout, checked from the source alone (ast, no imports): fast, and no model needed.

- No project module is over MAX_LINES lines.
- No import cycles between project modules.
- Imports run one way: app -> benchmarks -> core (conversation/) -> stages
  (audio_io, stt, llm, tts); a stage imports nothing of another stage nor
  of conversation.

Every import counts: relative ones, and those inside functions or under
`if TYPE_CHECKING:`.
"""
from __future__ import annotations

import ast
from functools import lru_cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
STAGES = ("audio_io", "stt", "llm", "tts")
PACKAGES = ("conversation", *STAGES)
MAX_LINES = 400
AGENT_MAX_LINES = 300  # the turn-taking core must stay readable in one sitting

pytestmark = pytest.mark.fast
# Higher layers may import lower ones, never the other way round.
LAYERS = {"stage": 0, "core": 1, "benchmarks": 2, "app": 3}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


@lru_cache(maxsize=None)
def project_files() -> dict[str, Path]:
    files = {"main": ROOT / "main.py"}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            files[module_name(path)] = path
    return files


def layer(module: str) -> str:
    top = module.split(".")[0]
    if top in STAGES:
        return "stage"
    if module == "main" or module == "conversation.app" or module.startswith("conversation.app."):
        return "app"
    if module == "conversation.benchmarks" or module.startswith("conversation.benchmarks."):
        return "benchmarks"
    return "core"


def imports_of(module: str, path: Path) -> set[str]:
    """The project modules `module` imports, wherever in the file the import is."""
    modules = set(project_files())
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: one dot is this package, each more dot one package up
                parts = package.split(".")
                base = ".".join(parts[:len(parts) - node.level + 1] + ([base] if base else []))
            # `from pkg import sub` imports the module pkg.sub; `from mod import name` imports mod.
            names = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base for alias in node.names]
        else:
            continue
        for name in names:
            # `import a.b.c` where only a.b is a module of ours still depends on a.b.
            while name and name not in modules:
                name = name.rpartition(".")[0]
            if name and name != module:
                found.add(name)
    return found


@lru_cache(maxsize=None)
def import_graph() -> dict[str, frozenset[str]]:
    return {module: frozenset(imports_of(module, path)) for module, path in project_files().items()}


def find_cycle(graph: dict[str, frozenset[str]]) -> list[str] | None:
    """One import cycle as a path (its first module repeated at the end), or None."""
    done: set[str] = set()
    for start in sorted(graph):
        if start in done:
            continue
        path, stack = [start], [iter(sorted(graph[start]))]  # depth-first, without recursion
        while stack:
            target = next(stack[-1], None)
            if target is None:
                stack.pop()
                done.add(path.pop())
            elif target in path:
                return path[path.index(target):] + [target]
            elif target not in done:
                path.append(target)
                stack.append(iter(sorted(graph[target])))
    return None


def test_no_module_is_over_the_line_limit():
    long = {module: n for module, path in project_files().items()
            if (n := len(path.read_text(encoding="utf-8").splitlines())) > MAX_LINES}
    assert not long, f"over {MAX_LINES} lines, split by job: {long}"


def test_the_agent_fits_in_one_sitting():
    lines = len((ROOT / "conversation" / "agent.py").read_text(encoding="utf-8").splitlines())
    assert lines < AGENT_MAX_LINES, f"conversation/agent.py has {lines} lines"


def test_no_import_cycles():
    cycle = find_cycle(import_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_imports_run_one_way():
    graph = import_graph()
    # The parser must see relative and in-function imports, or this test would pass on nothing.
    assert "conversation.session" in graph["conversation.app.cli"]
    assert "conversation.benchmarks.v2v" in graph["conversation.app.cli"]  # imported inside a function
    wrong = []
    for module, targets in sorted(graph.items()):
        for target in sorted(targets):
            upward = LAYERS[layer(target)] > LAYERS[layer(module)]
            across = layer(module) == "stage" and target.split(".")[0] != module.split(".")[0]
            if upward or across:
                wrong.append(f"{module} ({layer(module)}) imports {target} ({layer(target)})")
    assert not wrong, "imports against the layers:\n" + "\n".join(wrong)
