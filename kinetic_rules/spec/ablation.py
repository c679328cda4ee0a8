"""The parts of a strategy that can be switched off one at a time, and the spec without them.

`kinetic-rules ablate` measures what each named part contributes by backtesting the
strategy without it. Switching off happens here, on the validated spec models (never on
the file's text): each part is replaced by what leaves the rest unchanged — an entry
condition by `true` (the others must still all hold), an exit condition, protection,
take-profit, trailing rule, cooldown or Kelly cap by nothing, the sizing by the default
stake. The language stage then checks and compiles the result like any file.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from dataclasses import dataclass

from kinetic_rules.spec.models import Ablation, Entry, Sizing, Strategy

# (path of the offending value, message, hint) for the checker to position and report.
Problem = tuple[tuple[str | int, ...], str, str | None]


@dataclass(frozen=True)
class Part:
    """One switchable part: where it is written and what it becomes when switched off."""

    address: str  # e.g. entry.long.momentum: also its path in the file, dot-separated
    kind: str  # entry condition, exit condition, protection, …
    switched_off: str  # what replaces it, in words

    @property
    def path(self) -> tuple[str, ...]:
        return tuple(self.address.split("."))

    @property
    def name(self) -> str:
        return self.address.rsplit(".", 1)[-1]


def default_sizing() -> Sizing:
    """What a file without a `sizing` section stakes (the model's own default)."""
    default = Strategy.model_fields["sizing"].get_default(call_default_factory=True)
    assert isinstance(default, Sizing)
    return default


def switchable_parts(spec: Strategy) -> dict[str, Part]:
    """Every part `ablate` may switch off, pinned ones included, by address in file order."""
    parts: list[Part] = []
    for side in ("long", "short"):
        conditions = getattr(spec.entry, side)
        parts += [
            Part(f"entry.{side}.{name}", "entry condition", "true (always holds)")
            for name in conditions
        ]
    if spec.entry.cooldown is not None:
        parts.append(Part("entry.cooldown", "cooldown", "removed (re-enter at once)"))
    for side in ("long", "short"):
        parts += [
            Part(f"exit.{side}.{name}", "exit condition", "removed (never closes a trade)")
            for name in getattr(spec.exit, side)
        ]
    parts += [Part(f"protections.{name}", "protection", "removed") for name in spec.protections]
    parts += [Part(f"take_profit.{name}", "take-profit", "removed") for name in spec.take_profit]
    if spec.stoploss is not None:
        parts += [
            Part(f"stoploss.trailing.{name}", "trailing stop", "removed (the stop stays put)")
            for name in spec.stoploss.trailing
        ]
    if spec.sizing.kelly is not None and spec.sizing.stake is not None:
        parts.append(Part("sizing.kelly", "Kelly cap", "removed (the stake rule alone)"))
    default = default_sizing()
    if spec.sizing != default:
        parts.append(Part("sizing", "sizing", f"the default: {_stake_words(default)}"))
    return {part.address: part for part in parts}


def _stake_words(sizing: Sizing) -> str:
    try:
        return f"a stake of {float(sizing.stake or '') * 100:.4g}% of equity"
    except ValueError:
        return f"a stake of {sizing.stake}"


def switch_off(spec: Strategy, addresses: Iterable[str]) -> Strategy:
    """The spec with each addressed part replaced by its neutral form (see the module doc),
    and no `ablation` section."""
    wanted = set(addresses)
    unknown = wanted - set(switchable_parts(spec))
    if unknown:
        raise KeyError(f"not switchable: {', '.join(sorted(unknown))}")
    update: dict[str, object] = {}
    entry = _entry(spec.entry, wanted)
    if entry is not spec.entry:
        update["entry"] = entry
    exits = {
        side: {
            n: c for n, c in getattr(spec.exit, side).items() if f"exit.{side}.{n}" not in wanted
        }
        for side in ("long", "short")
    }
    if exits != {"long": spec.exit.long, "short": spec.exit.short}:
        update["exit"] = spec.exit.model_copy(update=exits)
    for section in ("protections", "take_profit"):
        kept = {n: v for n, v in getattr(spec, section).items() if f"{section}.{n}" not in wanted}
        if len(kept) != len(getattr(spec, section)):
            update[section] = kept
    if spec.stoploss is not None:
        trailing = {
            n: rule
            for n, rule in spec.stoploss.trailing.items()
            if f"stoploss.trailing.{n}" not in wanted
        }
        if len(trailing) != len(spec.stoploss.trailing):
            update["stoploss"] = spec.stoploss.model_copy(update={"trailing": trailing})
    if "sizing" in wanted:
        update["sizing"] = default_sizing()
    elif "sizing.kelly" in wanted:
        update["sizing"] = spec.sizing.model_copy(update={"kelly": None})
    if update:  # a variant is not ablated itself: its `ablation` names parts it may lack
        update["ablation"] = Ablation()
    return spec.model_copy(update=update)


def _entry(entry: Entry, wanted: set[str]) -> Entry:
    sides = {
        side: {
            name: "true" if f"entry.{side}.{name}" in wanted else condition
            for name, condition in getattr(entry, side).items()
        }
        for side in ("long", "short")
    }
    update: dict[str, object] = {}
    if sides != {"long": entry.long, "short": entry.short}:
        update.update(sides)
    if "entry.cooldown" in wanted:
        update["cooldown"] = None
    return entry.model_copy(update=update) if update else entry


def ablation_problems(spec: Strategy) -> list[Problem]:
    """Names in the `ablation` section that switch nothing, or contradict each other."""
    parts = switchable_parts(spec)
    problems: list[Problem] = []

    def unknown(path: tuple[str | int, ...], address: str) -> None:
        near = difflib.get_close_matches(address, list(parts), n=1)
        hint = f"did you mean {near[0]}?" if near else _known(parts)
        problems.append((path, f"'{address}' is not a part that can be switched off", hint))

    pinned = set(spec.ablation.pinned)
    for index, address in enumerate(spec.ablation.pinned):
        if address not in parts:
            unknown(("ablation", "pinned", index), address)
    for group, members in spec.ablation.groups.items():
        if not members:
            problems.append((("ablation", "groups", group), f"group '{group}' is empty", None))
        if group == "baseline":
            message = "'baseline' is the run with nothing switched off; name the group otherwise"
            problems.append((("ablation", "groups", group), message, None))
        if group in parts or any(p.name == group for p in parts.values()):
            message = f"group '{group}' has the name of a part; name the feature it makes up"
            problems.append((("ablation", "groups", group), message, None))
        for index, address in enumerate(members):
            path: tuple[str | int, ...] = ("ablation", "groups", group, index)
            if address not in parts:
                unknown(path, address)
            elif address in pinned:
                message = f"'{address}' is pinned, so no group can switch it off"
                problems.append((path, message, "remove it from the group or from pinned"))
    return problems


def _known(parts: dict[str, Part]) -> str:
    if not parts:
        return "this strategy has no part that can be switched off"
    return "parts: " + ", ".join(parts)
