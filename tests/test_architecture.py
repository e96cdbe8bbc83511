"""The architecture as docs/architecture.md states it, enforced: layers import only downwards,
no two modules import each other (directly or around a loop), internal imports sit at the top
of modules (only the CLI imports lazily, for a fast --help), CLI choices are the catalog's,
no Python file outside the catalog names a task, and one module calls torch.load."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import click

from aacbatch import catalog
from aacbatch.cli import cli
from aacbatch.data.ingest import PARSERS
from aacbatch.registry.queries import run_sql

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "aacbatch"
LAYER_LINE = re.compile(r"^layer (\d+):\s+(.+)$")


def layers() -> dict[str, int]:
    """Top-level unit of the package (``registry``, ``cli``, …) → its layer, read from the
    fenced block of docs/architecture.md that lists them."""
    text = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    block = text.split("```layers", 1)[1].split("```", 1)[0]
    out = {}
    for line in block.strip().splitlines():
        number, names = LAYER_LINE.match(line.strip()).groups()
        out.update({name: int(number) for name in names.split()})
    return out


def modules() -> dict[str, Path]:
    found = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(ROOT).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found[name] = path
    return found


def unit(module: str) -> str:
    return module.split(".")[1] if "." in module else module


def imports(path: Path, known: dict[str, Path]) -> list[tuple[str, int, bool]]:
    """(imported aacbatch module, line, at module level?) for every import in ``path``."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    top = {id(node) for node in tree.body}
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [f"{node.module}.{a.name}" if f"{node.module}.{a.name}" in known else node.module
                     for a in node.names]
        else:
            continue
        for name in names:
            if name.startswith("aacbatch"):
                out.append((name, node.lineno, id(node) in top))
    return out


def test_every_unit_has_a_layer():
    assigned = layers()
    units = {unit(m) for m in modules() if m != "aacbatch"}
    assert units - set(assigned) == set(), "add them to the layers block of docs/architecture.md"
    assert set(assigned) - units == set(), "the layers block names units that do not exist"


def test_layers_import_only_downwards():
    assigned, known = layers(), modules()
    wrong = []
    for module, path in known.items():
        if module == "aacbatch":
            continue
        for target, line, _ in imports(path, known):
            if target != "aacbatch" and assigned[unit(target)] > assigned[unit(module)]:
                wrong.append(f"{path.relative_to(ROOT)}:{line} ({unit(module)}, layer {assigned[unit(module)]}) "
                             f"imports {target} (layer {assigned[unit(target)]})")
    assert wrong == []


def test_no_import_cycles():
    known = modules()
    graph = {m: {t for t, _, _ in imports(p, known) if t in known and t != m} for m, p in known.items()}
    cycles, state = [], {}

    def visit(node: str, stack: list[str]) -> None:
        state[node] = "open"
        for nxt in sorted(graph[node]):
            if state.get(nxt) == "open":
                cycles.append(" → ".join(stack[stack.index(nxt):] + [nxt]))
            elif nxt not in state:
                visit(nxt, stack + [nxt])
        state[node] = "done"

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])
    assert cycles == []


def test_internal_imports_sit_at_the_top_except_in_the_cli():
    known = modules()
    hidden = [f"{path.relative_to(ROOT)}:{line} imports {target}"
              for module, path in known.items() if unit(module) not in ("cli", "__main__")
              for target, line, at_top in imports(path, known) if not at_top]
    assert hidden == []


def _choices(command: click.Command, option: str) -> tuple[str, ...]:
    param = next(p for p in command.params if p.name == option)
    return tuple(param.type.choices)


def test_cli_choice_lists_are_the_catalog():
    assert _choices(cli.commands["train"], "task") == tuple(catalog.TASKS)
    assert _choices(cli.commands["ingest"], "fmt") == catalog.INGEST_FORMATS == tuple(PARSERS)


def test_catalog_entries_resolve_to_their_implementations():
    for info in catalog.TASKS.values():
        cls = info.task_class()
        assert cls.Config.__dataclass_fields__  # every task declares a typed config
    for info in catalog.FEATURE_KINDS.values():
        assert info.kind_class().item == info.item


def test_no_python_file_outside_the_catalog_names_a_task():
    """Task names that are not also a family, an output or a prediction kind ("caption",
    "tagger") may appear only in the catalog; a model's architecture name (``MODEL_FAMILY =
    "clap"``) is not a task."""
    names = [t for t in catalog.TASKS if t not in catalog.FAMILIES + catalog.OUTPUTS]
    pattern = re.compile(r"""["'](%s)["']""" % "|".join(sorted(names, key=len, reverse=True)))
    found = []
    for path in PACKAGE.rglob("*.py"):
        if path.name == "catalog.py":
            continue
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if pattern.search(line) and not line.lstrip().startswith("#") and "MODEL_FAMILY = " not in line:
                found.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert found == []


def test_one_module_loads_checkpoints():
    users = sorted(str(p.relative_to(ROOT)) for p in PACKAGE.rglob("*.py") if "torch.load(" in p.read_text(encoding="utf-8"))
    assert users == ["aacbatch/models/checkpoints.py"]


def test_the_tasks_table_is_the_catalog(registry):
    _, rows = run_sql(registry, "SELECT name, family, output, select_metric, tag_loss, image_loss, encoder, ensemble "
                                "FROM tasks ORDER BY name")
    assert rows == [(t.name, t.family, t.output, t.select_metric, t.uses_tags, t.uses_images, t.encoder, t.ensemble)
                    for t in sorted(catalog.TASKS.values(), key=lambda t: t.name)]


def test_only_the_registry_builds_queries():
    """ORM queries and sessions live in aacbatch/registry/ (the registry API); other layers
    call its functions or run packaged .sql files."""
    outside = [p for p in PACKAGE.rglob("*.py") if "registry" not in p.relative_to(PACKAGE).parts]
    found = [f"{p.relative_to(ROOT)}" for p in outside
             if re.search(r"^\s*(from|import) sqlalchemy|\.transaction\(\)|\.connection\(", p.read_text(encoding="utf-8"),
                          re.MULTILINE)]
    assert found == []
