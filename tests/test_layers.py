"""The stages' order, declared once and checked against every import in the package.

A package may import its own modules and those of packages on a lower layer; packages
on the same layer are independent of each other. Imports inside functions count too:
a late import still ties the stages together.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from functools import cache
from pathlib import Path

import kinetic_rules

PACKAGE = "kinetic_rules"
ROOT = Path(kinetic_rules.__file__).parent

# Lowest first. "" is the top-level modules (errors, timeframes, units, secrets, files,
# patterns, market_rules, margin). functions sits below lang: the resolver and the
# unit checker read the function registry, and the registry knows nothing of the
# language. data sits below compile: the evaluators read candle frames and align
# timeframes with it, and it reads no strategy. models (learned predictors) takes arrays
# and gives predictions: the checked tree carries its settings, the compiler calls it.
LAYERS: tuple[tuple[str, ...], ...] = (
    ("",),
    ("spec", "functions", "data"),
    ("models",),
    ("lang",),
    ("compile",),
    ("engine",),
    ("backtest", "live", "persist"),
    ("research",),
    ("ui",),
    ("cli",),
)
ENTRY_POINT = f"{PACKAGE}.__main__"  # `python -m kinetic_rules` runs the cli

# The front end turns strategy text into checked plain data; the stages that run a
# compiled plan read that data (lang.ast, lang.checked) and never need the parser.
FRONT_END = ("lang.parser", "lang.checker")
RUNS_PLANS = ("compile", "engine", "live", "persist")


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(path): path for path in sorted(ROOT.rglob("*.py"))}


def stage_of(module: str) -> str:
    """The package a module belongs to; "" for the top-level modules."""
    if module == ENTRY_POINT:
        return "cli"
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and (ROOT / parts[1]).is_dir() else ""


def layer_of(stage: str) -> int:
    return next(i for i, layer in enumerate(LAYERS) if stage in layer)


@cache
def imports_of(module: str) -> tuple[tuple[int, str], ...]:
    """(line, module) for every import of the package, at any depth of the file."""
    return tuple(_walk_imports(module))


def _walk_imports(module: str) -> Iterator[tuple[int, str]]:
    path = MODULES[module]
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = package.split(".")[: len(package.split(".")) - node.level + 1]
            target = ".".join([*base, node.module or ""]).strip(".") if node.level else node.module
            found = [target or ""]
            # `from kinetic_rules.x import y` may import the module x.y
            found += [f"{found[0]}.{alias.name}" for alias in node.names]
        else:
            continue
        for name in found:
            if name in MODULES:
                yield node.lineno, name


@cache
def reaches(module: str) -> frozenset[str]:
    """Every package module this one loads, directly or through others."""
    seen: set[str] = set()
    todo = [module]
    while todo:
        current = todo.pop()
        for _, target in imports_of(current):
            parents = [".".join(target.split(".")[:n]) for n in range(2, target.count(".") + 1)]
            for name in [*parents, target]:
                if name in MODULES and name not in seen:
                    seen.add(name)
                    todo.append(name)
    return frozenset(seen)


def test_every_package_is_in_exactly_one_layer() -> None:
    declared = [stage for layer in LAYERS for stage in layer]
    assert len(declared) == len(set(declared))
    assert {stage_of(name) for name in MODULES} == set(declared)


def test_no_package_imports_a_later_stage_or_a_sibling() -> None:
    wrong = []
    for module, path in MODULES.items():
        stage = stage_of(module)
        for line, target in imports_of(module):
            other = stage_of(target)
            if other == stage:
                continue
            if layer_of(other) >= layer_of(stage):
                wrong.append(f"{path.relative_to(ROOT.parent)}:{line}: {stage} imports {target}")
    assert not wrong, "\n".join(wrong)


def test_the_stages_that_run_plans_never_load_the_parser() -> None:
    front_end = {f"{PACKAGE}.{name}" for name in FRONT_END}
    wrong = [
        f"{module} reaches {sorted(reaches(module) & front_end)}"
        for module in MODULES
        if stage_of(module) in RUNS_PLANS and reaches(module) & front_end
    ]
    assert not wrong, "\n".join(wrong)


def test_the_checker_is_seen_by_the_walk() -> None:
    """The walk itself works: the checker does load the parser, the cli does load it all."""
    assert f"{PACKAGE}.lang.parser" in reaches(f"{PACKAGE}.lang.checker")
    assert f"{PACKAGE}.live.runtime" in reaches(f"{PACKAGE}.cli.run_cmd")
    assert stage_of(f"{PACKAGE}.errors") == ""
    assert stage_of(f"{PACKAGE}.engine") == "engine"
