"""The package's shape: stages import only the stages before them, and no module imports a command."""

from __future__ import annotations

import ast
from pathlib import Path

from helpers import REPO

PACKAGE = REPO / "pipeline"
#: The stages in the order a frame flows through them; a module may import its own stage and those before it.
LAYERS = [
    # pipeline.engines: where parallel work runs (local processes, Ray); the stages hand it their work.
    {"pipeline", "pipeline.errors", "pipeline.interrupts", "pipeline.labels", "pipeline.files", "pipeline.resources",
     "pipeline.engines", "pipeline.stats"},
    {"pipeline.preprocess"},
    {"pipeline.draw"},
    {"pipeline.data"},
    {"pipeline.lenet"},
    {"pipeline.training"},
    {"pipeline.explainers"},
    {"pipeline.live"},
    {"pipeline.ui"},
    {"pipeline.cli_options"},
]
COMMANDS = {f"pipeline.{name}" for name in ("collect", "train", "evaluate", "demo", "explain", "study", "export")}
DISPATCHERS = {"pipeline.cli", "pipeline.__main__"}


def module_name(path: Path) -> str:
    parts = path.relative_to(REPO).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def layer_of(name: str) -> int:
    if name in COMMANDS or name in DISPATCHERS:
        return len(LAYERS)
    for k, members in reversed(list(enumerate(LAYERS))):
        if any(name == m or name.startswith(m + ".") for m in members if m != "pipeline"):
            return k
    return 0


def imports_of(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("pipeline"):
            found.add(node.module)
            found |= {f"{node.module}.{a.name}" for a in node.names if f"{node.module}.{a.name}" in COMMANDS}
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("pipeline")}
    return found


def test_no_module_imports_a_later_stage_or_a_command() -> None:
    modules = {module_name(p): p for p in PACKAGE.rglob("*.py")}
    assert len(modules) > 40 and not any(m.startswith("pipeline.pipeline") for m in modules)
    upward, commands = [], []
    for name, path in modules.items():
        for imported in imports_of(path):
            if imported in COMMANDS and name not in DISPATCHERS:
                commands.append(f"{name} imports {imported}")
            elif layer_of(imported) > layer_of(name):
                upward.append(f"{name} (stage {layer_of(name)}) imports {imported} (stage {layer_of(imported)})")
    assert not commands, commands
    assert not upward, upward


def test_every_module_file_belongs_to_a_stage_or_is_a_command() -> None:
    flat = {p.stem for p in PACKAGE.glob("*.py")}
    assert flat == {"__init__", "__main__", "cli", "cli_options", "errors", "files", "interrupts", "labels", "resources", "stats",
                    *(c.split(".")[1] for c in COMMANDS)}
