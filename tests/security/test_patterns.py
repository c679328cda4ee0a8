"""Blacklist patterns from strategy files: matched in linear time everywhere, refused at
`validate` (with their position) when they need backtracking."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from kinetic_rules.engine.scanner import blacklisted
from kinetic_rules.patterns import MAX_PATTERN, PatternError, compile_pattern, matches_any
from tests.conftest import STRATEGIES
from tests.security.helpers import cli, python

CATASTROPHIC = "(a+)+$"  # exponential for a backtracking matcher on "aaaa…a!"
LONG_NAME = "a" * 60 + "!/USDT"


def test_a_catastrophic_pattern_finishes_on_a_long_pair_name_in_backtest_and_live() -> None:
    # Python's re would need about 2**60 steps here; the subprocess's timeout is the
    # hang detector. Both paths a strategy's blacklist takes are exercised.
    code = textwrap.dedent(f"""
        from kinetic_rules.engine.scanner import blacklisted
        from kinetic_rules.live.markets import eligible
        from kinetic_rules.spec.models import Market
        name = {LONG_NAME!r}
        assert not blacklisted(name, [{CATASTROPHIC!r}])
        assert blacklisted("a" * 60, [{CATASTROPHIC!r}])
        base = name.split("/")[0]
        markets = {{name: {{"spot": True, "active": True, "quote": "USDT", "base": base}},
                    "SOL/USDT": {{"spot": True, "active": True, "quote": "USDT", "base": "SOL"}}}}
        market = Market(exchange="binance", type="spot", stake_currency="USDT")
        assert eligible(markets, market=market, blacklist=[{CATASTROPHIC!r}, "SOL/.*"]) == [name]
        print("done")
    """)
    done = python(code)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "done"


def test_matching_is_a_whole_name_match_like_before() -> None:
    assert blacklisted("BNB/USDT", ["BNB/.*"])
    assert not blacklisted("XBNB/USDT", ["BNB/.*"])
    assert blacklisted("BTCUP/USDT", [".*UP/.*"])
    assert not matches_any("BTC/USDT", [])


@pytest.mark.parametrize(
    ("pattern", "words"),
    [
        (r"(BTC)\1/.*", "backreferences"),
        (r"(?=BTC).*", "lookahead"),
        (r"(?!BTC).*", "negative lookahead"),
        (r"(?<=X)BTC", "lookbehind"),
        ("[BTC", "missing ]"),
        ("(x{1000}){1000}", "too large"),
    ],
)
def test_patterns_that_need_backtracking_or_are_broken_are_refused(
    pattern: str, words: str
) -> None:
    with pytest.raises(PatternError, match=words.replace("]", r"\]")):
        compile_pattern(pattern)


def test_patterns_are_bounded_in_length() -> None:
    with pytest.raises(PatternError, match="at most"):
        compile_pattern("A" * (MAX_PATTERN + 1))


def test_validate_points_at_the_unusable_pattern(tmp_path: Path) -> None:
    text = (STRATEGIES / "kinetic_empire.yaml").read_text()
    old = '"BNB/.*"'
    assert old in text
    bad = tmp_path / "lookahead.yaml"
    bad.write_text(text.replace(old, '"(?!BTC)BNB/.*"'))
    line = next(n for n, row in enumerate(bad.read_text().splitlines(), 1) if "(?!BTC)" in row)
    column = bad.read_text().splitlines()[line - 1].index('"(?!BTC)') + 1
    done = cli("validate", str(bad))
    assert done.returncode == 2
    assert f"lookahead.yaml:{line}:{column}:" in done.stderr
    assert "not supported" in done.stderr and "^" in done.stderr
    assert "Traceback" not in done.stderr


def test_a_catastrophic_pattern_validates_and_backtests(
    fixture_store: Path, tmp_path: Path
) -> None:
    text = (STRATEGIES / "kinetic_empire.yaml").read_text()
    hostile = tmp_path / "hostile.yaml"
    hostile.write_text(text.replace('"BNB/.*"', f'"BNB/.*", "{CATASTROPHIC}"'))
    done = cli("backtest", str(hostile), "--data", str(fixture_store), "--quiet")
    assert done.returncode == 0, done.stderr
    assert "Totals" in done.stdout
