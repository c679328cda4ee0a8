"""YAML that refers to itself, multiplies itself or nests without end: a positioned error,
with memory bounded for any file up to the 2 MB limit."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from kinetic_rules.errors import StrategyError
from kinetic_rules.spec.loader import MAX_BYTES, MAX_DEPTH, load_text
from tests.security.helpers import python

MEMORY_LIMIT = 1 << 30  # bytes of address space for the whole Python process

HOSTILE: dict[str, bytes] = {
    "self_list": b"a: &a [*a]",
    "self_map": b"a: &a {b: *a}",
    "self_deep": b"a: &a\n  b:\n    c: [1, 2, *a]\n",
    "laughs": b"a: &a [x,x,x,x,x,x,x,x,x,x]\n"
    + b"".join(
        f"{c}: &{c} [{', '.join([f'*{p}'] * 10)}]\n".encode()
        for p, c in zip("abcdefghi", "bcdefghij", strict=True)
    ),
    "deep_flow": b"a: " + b"[" * 900_000 + b"]" * 900_000,
    "deep_block": b"".join(b"  " * i + b"k:\n" for i in range(1_000)),
    "wide": b"a: [" + b"1," * 990_000 + b"1]",
    "many_keys": b"".join(b"k%d: 1\n" % i for i in range(200_000))[: MAX_BYTES - 10],
}


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_hostile_yaml_is_a_clean_error_under_a_memory_limit(name: str, tmp_path: Path) -> None:
    path = tmp_path / f"{name}.yaml"
    path.write_bytes(HOSTILE[name])
    assert path.stat().st_size <= MAX_BYTES
    code = textwrap.dedent(f"""
        import resource, sys
        resource.setrlimit(resource.RLIMIT_AS, ({MEMORY_LIMIT}, {MEMORY_LIMIT}))
        from kinetic_rules.cli.app import main
        sys.exit(main(["validate", sys.argv[1]]))
    """)
    done = python(code, str(path))
    assert done.returncode == 2, done.stderr[-2000:]
    assert f"{name}.yaml:" in done.stderr and "error[" in done.stderr
    assert "Traceback" not in done.stderr and "MemoryError" not in done.stderr


def test_a_recursive_alias_is_reported_where_it_is_written() -> None:
    with pytest.raises(StrategyError) as caught:
        load_text("metadata:\n  name: &n [1, *n]\n", "self.yaml")
    (diagnostic,) = caught.value.diagnostics
    assert diagnostic.span.source is not None
    assert diagnostic.span.source.position(diagnostic.span.start) == (2, 16)  # the * of *n
    assert "*n refers to the value that contains it" in diagnostic.message


def test_an_alias_to_a_finished_value_still_works() -> None:
    with pytest.raises(StrategyError) as caught:  # valid YAML; only the strategy is incomplete
        load_text("metadata: {name: &n x, description: *n}\n", "ok.yaml")
    assert all("alias" not in d.message for d in caught.value.diagnostics)


def test_nesting_is_limited_even_when_aliases_build_it() -> None:
    levels = [f"l{i}: &l{i} [*l{i - 1}]" for i in range(1, MAX_DEPTH + 2)]
    text = "l0: &l0 [1]\n" + "\n".join(levels) + "\n"
    with pytest.raises(StrategyError) as caught:
        load_text(text, "deep.yaml")
    assert any("levels deep" in d.message for d in caught.value.diagnostics)
