"""Entry tags: which setups opened a trade, and cooldowns per tag (seed 004 §E)."""

from __future__ import annotations

import pandas as pd

from kinetic_rules.backtest.metrics import by_tag, compute_metrics
from kinetic_rules.backtest.report_files import results_document, trade_records, trades_csv
from kinetic_rules.backtest.runner import simulate
from kinetic_rules.compile.plan import build_plan
from kinetic_rules.engine.model import BacktestResult
from kinetic_rules.lang.checker import check
from kinetic_rules.spec.loader import load_text

# Loud signals at candles 1, 4, 8 and 10, quiet ones at 5 and 12. A trade enters at the
# next open and its exit is decided a candle later: a signal at s frees the pair for a
# signal at s + 2, and a cooldown of 30m (six candles) holds it back until s + 8.
VOLUMES = [0, 900, 0, 0, 900, 200, 0, 0, 900, 0, 900, 0, 200, 0, 0, 0]
TAGS = "  tags:\n    loud: volume > 500\n    quiet: volume <= 500\n"


def run(entry_extra: str) -> BacktestResult:
    text = f"""
metadata: {{name: tags}}
timeframe: 5m
market: {{pairs: [X/USDT]}}
orders: {{entry: market, exit: market}}
sizing: {{stake: 10%}}
entry:
  long:
    go: volume > 100
{entry_extra}
exit:
  long:
    quick: bars_held >= 1
"""
    plan = build_plan(check(load_text(text, "t.yaml")))
    index = pd.date_range("2024-01-01", periods=len(VOLUMES), freq="5min", tz="UTC", name="date")
    frame = pd.DataFrame(
        {"open": 100.0, "high": 101.0, "low": 99.0, "close": 100.0, "volume": VOLUMES},
        index=index,
    )
    return simulate(plan, lambda pair, tf: frame, ["X/USDT"])


def signals(result: BacktestResult) -> list[tuple[int, tuple[str, ...]]]:
    start = pd.Timestamp("2024-01-01", tz="UTC")
    return [(int((t.signal_time - start) / pd.Timedelta("5min")), t.tags) for t in result.trades]


def test_a_trade_carries_every_tag_that_held_at_its_signal_in_file_order() -> None:
    extra = "  tags:\n    loud: volume > 500\n    any: volume > 100\n    none: volume < 0\n"
    assert signals(run(extra)) == [
        (1, ("loud", "any")), (4, ("loud", "any")), (8, ("loud", "any")),
        (10, ("loud", "any")), (12, ("any",)),
    ]  # fmt: skip


def test_a_cooldown_per_tag_holds_back_that_setup_only() -> None:
    loud, quiet = ("loud",), ("quiet",)
    assert signals(run(TAGS)) == [(1, loud), (4, loud), (8, loud), (10, loud), (12, quiet)]
    per_tag = run(TAGS + "  cooldown: {tag: 30m}\n")
    # Loud waits after a loud trade (4 and 8 are too soon), quiet after a quiet one (12).
    assert signals(per_tag) == [(1, loud), (5, quiet), (10, loud)]
    per_pair = run(TAGS + "  cooldown: 30m\n")  # the short form: the pair waits
    assert signals(per_pair) == [(1, loud), (10, loud)]
    both = run(TAGS + "  cooldown: {pair: 5m, tag: 30m}\n")
    assert signals(both) == signals(per_tag)


def test_untagged_trades_hold_back_untagged_entries() -> None:
    only_loud = "  tags:\n    loud: volume > 500\n  cooldown: {tag: 30m}\n"
    # 5 is untagged: free to go after a loud trade; 12 is too soon after it.
    assert signals(run(only_loud)) == [(1, ("loud",)), (5, ()), (10, ("loud",))]


def test_trade_records_and_reports_name_the_tags() -> None:
    result = run(TAGS)
    assert result.tags == ["loud", "quiet"]
    rows = {row.key: row.trades for row in by_tag(result)}
    assert rows == {"loud": 4, "quiet": 1}
    document = results_document(result, compute_metrics(result))
    assert document["tags"] == ["loud", "quiet"]
    assert [t["tags"] for t in trade_records(result)] == [["loud"]] * 4 + [["quiet"]]
    assert {row["key"] for row in document["breakdowns"]["tag"]} == {"loud", "quiet"}
    assert trades_csv(result).splitlines()[5].count(",quiet,") == 1
