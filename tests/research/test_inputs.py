"""Every input a person types is checked, with a position, before any trial runs."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kinetic_rules.cli.app import main
from kinetic_rules.errors import StrategyError
from kinetic_rules.research.objectives import METRICS, parse_constraint
from kinetic_rules.research.space import search_space
from kinetic_rules.spec.loader import load_file
from tests.research.conftest import KE

TINY = """\
metadata: {name: tiny}
market: {exchange: binance, pairs: [BTC/USDT]}
timeframe: 5m
params:
  level: {value: 50, min: 10, max: 90, step: 5, doc: "RSI level"}
  loose: {value: 1.5, doc: "no bounds"}
  pct: {value: 2.5%, min: 0.01, max: 0.05, doc: "a percentage"}
entry:
  long:
    low_rsi: rsi(close, 14) < $level
    moved: roc(close, 3) > $loose
    dip: close < highest(close, 12) * (1 - $pct)
stoploss:
  initial: entry_price * 0.95
"""


def _tiny(tmp_path: Path, text: str = TINY) -> Path:
    path = tmp_path / "tiny.yaml"
    path.write_text(text)
    return path


def test_the_default_space_is_every_bounded_param_and_integers_stay_integers(
    tmp_path: Path,
) -> None:
    space = search_space(load_file(_tiny(tmp_path)), None)
    assert space.names == ["level", "pct"]
    level = space.dimensions[0]
    assert level.integer and level.grid() == list(range(10, 95, 5))
    assert all(isinstance(v, int) for v in level.grid())
    assert space.dimensions[1].percent


def test_an_unknown_param_is_refused_where_it_was_typed(tmp_path: Path) -> None:
    with pytest.raises(StrategyError) as caught:
        search_space(load_file(_tiny(tmp_path)), ["level", "lvel"])
    rendered = caught.value.render()
    assert "--params:1:7" in rendered and "no param named lvel" in rendered
    assert "did you mean level?" in rendered


def test_an_unbounded_param_is_refused_at_its_line_in_the_file(tmp_path: Path) -> None:
    path = _tiny(tmp_path)
    with pytest.raises(StrategyError) as caught:
        search_space(load_file(path), ["loose"])
    rendered = caught.value.render()
    assert f"{path}:6:3" in rendered and "no bounds" in rendered and "^" in rendered


def test_a_step_that_does_not_divide_the_range_is_a_file_error(tmp_path: Path) -> None:
    bad = TINY.replace("max: 90, step: 5", "max: 90, step: 7")
    assert main(["validate", str(_tiny(tmp_path, bad))]) == 2


@pytest.mark.parametrize(
    ("text", "metric", "op", "threshold"),
    [
        ("max_drawdown < 15%", "max_drawdown", "<", 0.15),
        ("trades>=30", "trades", ">=", 30.0),
        ("  sharpe > 1.5 ", "sharpe", ">", 1.5),
        ("win_rate <= .6", "win_rate", "<=", 0.6),
    ],
)
def test_constraints_read_metric_operator_number(
    text: str, metric: str, op: str, threshold: float
) -> None:
    constraint = parse_constraint(text)
    assert (constraint.metric, constraint.op, constraint.threshold) == (metric, op, threshold)


def test_a_constraint_holds_only_on_a_metric_that_exists() -> None:
    constraint = parse_constraint("max_drawdown < 15%")
    assert constraint.holds({"max_drawdown": 0.10})
    assert not constraint.holds({"max_drawdown": 0.20})
    assert not parse_constraint("sharpe > 0").holds({"sharpe": None})


def test_a_misspelt_metric_is_pointed_at() -> None:
    with pytest.raises(StrategyError) as caught:
        parse_constraint("max_drawdon < 15%")
    rendered = caught.value.render()
    assert "--constraint:1:1" in rendered and "did you mean max_drawdown?" in rendered


@given(st.text(max_size=40))
def test_any_constraint_text_parses_or_is_a_positioned_error(text: str) -> None:
    try:
        constraint = parse_constraint(text)
    except StrategyError as problem:
        assert problem.diagnostics[0].span.source is not None
    else:
        assert constraint.metric in METRICS


def test_the_cli_refuses_bad_input_before_any_trial(
    fixture_store: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"sqlite:///{tmp_path / 's.sqlite'}"
    base = ["optimize", str(KE), "--data", str(fixture_store), "--study", url, "--quiet",
            "--report", str(tmp_path / "r")]  # fmt: skip
    assert main([*base, "--params", "rsi_min,nope"]) == 2
    assert "no param named nope" in capsys.readouterr().err
    assert main([*base, "--constraint", "drawdown < 10%"]) == 2
    assert "did you mean max_drawdown?" in capsys.readouterr().err
    assert main([*base, "--objective", "profit"]) == 2
    assert "no metric named profit" in capsys.readouterr().err
    assert main([*base, "--cache-mb", "-1"]) == 2
    assert "--cache-mb -1: expected 0 (none) to" in capsys.readouterr().err
    walk = ["walkforward", str(KE), "--data", str(fixture_store), "--study", url, "--quiet"]
    assert main([*walk, "--train", "1d", "--test", "5d"]) == 2
    assert "--train 1d is shorter than 2 days" in capsys.readouterr().err
    assert main([*walk, "--train", "60d", "--test", "30d", "--warmup", "2d"]) == 2
    assert "no walk-forward window fits" in capsys.readouterr().err
    assert not (tmp_path / "s.sqlite").exists() or "Traceback" not in capsys.readouterr().err
