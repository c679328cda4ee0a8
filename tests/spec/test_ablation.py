"""Switchable parts: what they are, what switching one off builds, and the `ablation:` section."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kinetic_rules.cli.app import main
from kinetic_rules.compile.plan import build_plan
from kinetic_rules.lang.checker import check
from kinetic_rules.spec.ablation import default_sizing, switch_off, switchable_parts
from kinetic_rules.spec.loader import LoadedStrategy, load_file
from kinetic_rules.spec.models import Strategy
from tests.conftest import STRATEGIES

KE = STRATEGIES / "kinetic_empire.yaml"


def test_every_named_part_of_kinetic_empire_is_switchable_in_file_order() -> None:
    parts = switchable_parts(load_file(KE).strategy)
    assert list(parts) == [
        "entry.long.macro_trend",
        "entry.long.micro_trend",
        "entry.long.momentum",
        "entry.long.pullback",
        "entry.long.volume",
        "exit.long.trend_break",
        "protections.flash_crash",
        "stoploss.trailing.atr_trail",
        "sizing",
    ]
    assert parts["entry.long.momentum"].kind == "entry condition"
    assert parts["sizing"].switched_off == "the default: a stake of 1% of equity"


def test_each_kind_is_switched_off_to_its_neutral_form() -> None:
    spec = load_file(KE).strategy
    off = switch_off(
        spec,
        [
            "entry.long.momentum",
            "exit.long.trend_break",
            "protections.flash_crash",
            "stoploss.trailing.atr_trail",
            "sizing",
        ],
    )
    assert off.entry.long["momentum"] == "true"  # the other four must still all hold
    assert off.entry.long["volume"] == spec.entry.long["volume"]
    assert off.exit.long == {} and off.protections == {}
    assert off.stoploss is not None and off.stoploss.trailing == {}
    assert off.stoploss.initial == spec.stoploss.initial  # type: ignore[union-attr]
    assert off.sizing == default_sizing() and spec.sizing.kelly is not None
    assert spec.entry.long["momentum"] != "true"  # the original is untouched
    assert switch_off(spec, []) == spec


def test_unknown_parts_cannot_be_switched_off() -> None:
    with pytest.raises(KeyError, match=r"entry\.long\.nope"):
        switch_off(load_file(KE).strategy, ["entry.long.nope"])


def test_confluence_has_a_cooldown_and_a_kelly_cap_to_switch_off() -> None:
    spec = load_file(STRATEGIES / "confluence.yaml").strategy
    parts = switchable_parts(spec)
    assert {"entry.cooldown", "sizing.kelly", "protections.daily_loss"} <= set(parts)
    off = switch_off(spec, ["entry.cooldown", "sizing.kelly"])
    assert off.entry.cooldown is None and off.sizing.kelly is None
    assert off.sizing.stake == spec.sizing.stake


@pytest.mark.parametrize("path", sorted(STRATEGIES.glob("*.yaml")), ids=lambda p: p.stem)
def test_every_part_and_group_of_every_shipped_strategy_switches_off_into_a_valid_plan(
    path: Path,
) -> None:
    loaded = load_file(path)
    spec = loaded.strategy
    switches = [[address] for address in switchable_parts(spec)]
    switches += list(spec.ablation.groups.values())
    for addresses in switches:
        variant = LoadedStrategy(switch_off(spec, addresses), loaded.positions)
        plan = build_plan(check(variant))
        assert plan.strategy.spec != spec, addresses


def test_adaptive_mtf_names_the_features_of_its_design() -> None:
    groups = load_file(STRATEGIES / "adaptive_mtf.yaml").strategy.ablation.groups
    assert {"timeframe_alignment", "partial_exits", "dynamic_stops"} <= set(groups)


ABLATION = """
ablation:
  pinned: [sizing, protections.flash_crsh]
  groups:
    trend: [entry.long.macro_trend, entry.long.micro_trend]
    sized: [sizing]
    empty: []
"""


def test_the_ablation_section_is_checked_with_positions(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "s.yaml"
    text = KE.read_text() + ABLATION
    path.write_text(text)
    assert main(["validate", str(path)]) == 2
    err = capsys.readouterr().err
    line = text.splitlines().index("  pinned: [sizing, protections.flash_crsh]") + 1
    assert (
        f"s.yaml:{line}:20: error[ablation]: 'protections.flash_crsh' is not a part that can "
        "be switched off" in err
    )
    assert "did you mean protections.flash_crash?" in err
    assert "'sizing' is pinned, so no group can switch it off" in err
    assert "group 'empty' is empty" in err
    assert "Traceback" not in err


def test_a_well_formed_ablation_section_validates(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "s.yaml"
    path.write_text(
        KE.read_text()
        + "ablation:\n  pinned: [sizing]\n  groups:\n"
        + "    trend: [entry.long.macro_trend, entry.long.micro_trend]\n"
    )
    assert main(["validate", str(path)]) == 0, capsys.readouterr().err


def _written(spec: Strategy, address: str) -> object:
    """What the file holds at a part's address (None when it is gone)."""
    if address == "sizing":
        return spec.sizing
    if address == "sizing.kelly":
        return spec.sizing.kelly
    if address == "entry.cooldown":
        return spec.entry.cooldown
    *section, name = address.split(".")
    holder: object = spec
    for key in section:
        holder = getattr(holder, key) if holder is not None else None
    return holder.get(name) if isinstance(holder, dict) else None


SIZING = {"sizing", "sizing.kelly"}
SHIPPED = {path.stem: load_file(path) for path in sorted(STRATEGIES.glob("*.yaml"))}


@settings(max_examples=40, deadline=None)
@given(data=st.data(), name=st.sampled_from(sorted(SHIPPED)))
def test_switching_off_any_set_of_parts_touches_only_those_parts(
    data: st.DataObject, name: str
) -> None:
    loaded = SHIPPED[name]
    parts = switchable_parts(loaded.strategy)
    chosen = data.draw(st.sets(st.sampled_from(sorted(parts))))
    off = switch_off(loaded.strategy, chosen)
    for address, part in parts.items():
        before, after = _written(loaded.strategy, address), _written(off, address)
        if address in SIZING and (chosen & SIZING) - {address}:
            continue  # the Kelly cap is part of the sizing: switching one changes the other
        if address not in chosen:
            assert after == before, address
        elif part.kind == "entry condition":
            assert after == "true"
        elif address == "sizing":
            assert after == default_sizing()
        else:
            assert after is None, address
    assert switch_off(off, [a for a in chosen if a in switchable_parts(off)]) == off
    build_plan(check(LoadedStrategy(off, loaded.positions)))  # and it still compiles
