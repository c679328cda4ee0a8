"""Portfolio-wide values on hand-made portfolio states: each name's exact meaning and timing."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from kinetic_rules.compile.evaluate import PairSignals
from kinetic_rules.engine.model import END_OF_DATA, Fill, Side, Trade
from kinetic_rules.engine.portfolio import NEVER, PairData, Position
from kinetic_rules.engine.portfolio_values import Ledger, decision_env, standing, standing_at

STEP = pd.Timedelta("15min")
START = pd.Timestamp("2024-03-01 22:00", tz="UTC")


def candle(k: int) -> pd.Timestamp:
    """Open time of candle k; its close is candle(k + 1)."""
    return START + k * STEP


def pair_data(pair: str, closes: list[float], gaps: tuple[int, ...] = ()) -> PairData:
    kept = [k for k in range(len(closes)) if k not in gaps]
    index = pd.DatetimeIndex([candle(k) for k in kept])
    values = np.asarray([closes[k] for k in kept], dtype=np.float64)
    prices = {name: values.copy() for name in ("open", "high", "low", "close")}
    return PairData(
        pair=pair,
        signals=PairSignals(pair, index, {}, None),
        prices=prices,
        timeline_index=np.asarray(kept),
        tradable_from=0,
        allowed=np.ones(len(kept), dtype=bool),
    )


def trade(pair: str, side: Side, entry_at: int, price: float, amount: float) -> Trade:
    made = Trade(
        id=1, pair=pair, side=side, regime=None, signal_time=candle(entry_at - 1),
        entry_time=candle(entry_at), entry_price=price, amount=amount, stake=price * amount,
        leverage=1.0, initial_stop=0.0,
    )  # fmt: skip
    made.fills.append(Fill(candle(entry_at), price, amount, 0.2, "entry"))
    return made


def position(id: int, made: Trade | None, stake: float, pair: str = "A/USDT") -> Position:
    held = Position(id, made.pair if made else pair, made.side if made else "long", START, stake)
    held.trade, held.state = made, "open" if made else "pending"
    return held


def ledger(
    slots: list[Position],
    unsettled: list[Position] | None = None,
    closed: list[tuple[pd.Timestamp, pd.Timestamp, float]] | None = None,
    market: dict[str, PairData] | None = None,
    realized: float = 0.0,
) -> Ledger:
    closes = [100.0, 100.0, 102.0, 104.0, 110.0, 105.0, 90.0, 95.0, 99.0, 101.0]
    market = market or {"A/USDT": pair_data("A/USDT", closes)}
    return Ledger(1_000.0, realized, slots, unsettled or [], closed or [], market, STEP)


def values_at(book: Ledger, *closes_of: int) -> dict[str, np.ndarray]:
    moments = pd.DatetimeIndex([candle(k) + STEP for k in closes_of])
    return standing(book, moments).values


def test_open_profit_counts_fills_known_and_marks_the_rest_to_the_close() -> None:
    long = trade("A/USDT", "long", 1, 100.0, 2.0)  # entry fee 0.2
    long.fills.append(Fill(candle(3), 110.0, 1.0, 0.11, "tp1"))  # half sold at 110, fee 0.11
    book = ledger([position(1, long, 200.0)])
    values = values_at(book, 0, 1, 2, 3, 4)
    # Before the entry candle has closed the trade is not in the market; at the close of the
    # entry candle it is marked to 100, then 102; at candle 3's close the take-profit is known.
    sold = 10.0 - 0.11
    expected = [0.0, -0.2, -0.2 + 2 * 2.0, -0.2 + sold + 1 * 4.0, -0.2 + sold + 1 * 10.0]
    np.testing.assert_allclose(values["open_profit"], expected)
    np.testing.assert_allclose(values["open_profit_ratio"], np.asarray(expected) / 1_000.0)
    # Exposure is the stake still held: all of it until the take-profit is known, then half.
    np.testing.assert_allclose(values["exposure"], [0.2, 0.2, 0.2, 0.1, 0.1])
    np.testing.assert_array_equal(values["open_trades"], [1, 1, 1, 1, 1])


def test_a_short_gains_when_the_price_falls() -> None:
    short = trade("A/USDT", "short", 4, 110.0, 1.0)
    values = values_at(ledger([position(1, short, 110.0)]), 6)
    assert values["open_profit"][0] == pytest.approx(-0.2 + (110.0 - 90.0))


def test_an_entry_order_holds_its_slot_and_stake_but_no_profit() -> None:
    values = values_at(ledger([position(1, None, 300.0)]), 5)
    assert values["open_trades"][0] == 1 and values["exposure"][0] == pytest.approx(0.3)
    assert values["open_profit"][0] == 0.0


def test_a_slot_frees_when_the_exit_is_decided_but_the_trade_is_marked_until_it_fills() -> None:
    long = trade("A/USDT", "long", 1, 100.0, 1.0)
    long.fills.append(Fill(candle(5), 105.0, 1.0, 0.1, "exit"))  # decided at candle 4's close
    long.exit_time, long.exit_reason = candle(5), "exit"
    held = position(1, long, 100.0)
    held.release, held.settle = candle(5), candle(6)
    values = values_at(ledger([held]), 3, 4, 5)
    np.testing.assert_array_equal(values["open_trades"], [1, 0, 0])
    np.testing.assert_allclose(values["exposure"], [0.1, 0.0, 0.0])
    # In the market at candle 4's close (marked to 110); its profit is settled at candle 5's.
    np.testing.assert_allclose(values["open_profit"], [-0.2 + 4.0, -0.2 + 10.0, 0.0])
    settled = -0.2 + 5.0 - 0.1
    np.testing.assert_allclose(values["equity"], [1_000.0, 1_000.0, 1_000.0 + settled])


def test_today_counts_trades_whose_last_fill_was_today_from_midnight_utc() -> None:
    # START is 22:00: candle 7 opens at 23:45 and closes at midnight.
    late = trade("A/USDT", "long", 1, 100.0, 1.0)
    late.fills.append(Fill(candle(7), 95.0, 1.0, 0.1, "stop_loss"))  # in the 23:45 candle
    late.exit_time = candle(7)
    early = trade("A/USDT", "long", 8, 95.0, 1.0)
    early.fills.append(Fill(candle(8), 99.0, 1.0, 0.1, "stop_loss"))  # in the 00:00 candle
    early.exit_time = candle(8)
    first, second = position(1, late, 100.0), position(2, early, 95.0)
    first.release = first.settle = candle(8)  # known at midnight
    second.release = second.settle = candle(9)
    closed = [(candle(1), candle(0), -3.0)]  # an earlier trade of the same day, settled
    book = ledger([first, second], closed=closed, realized=-3.0)
    values = values_at(book, 6, 7, 8)  # closes at 23:45, 00:00, 00:15
    loss = -0.2 - 5.0 - 0.1
    np.testing.assert_allclose(values["today_profit"], [-3.0, 0.0, early.profit])
    np.testing.assert_allclose(values["equity"], [997.0, 997.0 + loss, 997.0 + loss + early.profit])
    start_of_day = 997.0 + loss
    np.testing.assert_allclose(values["today_profit_ratio"][1:], [0.0, early.profit / start_of_day])
    assert values["today_profit_ratio"][0] == pytest.approx(-3.0 / 1_000.0)


def closed_trade(id: int, exit_at: int, profit: float) -> Position:
    made = trade("A/USDT", "long", 0, 100.0, 1.0)
    made.fills.append(Fill(candle(exit_at), 100.0 + profit + 0.2, 1.0, 0.0, "exit"))
    made.exit_time = candle(exit_at)
    held = position(id, made, 100.0)
    held.release = held.settle = candle(exit_at + 1)
    return held


def test_todays_lowest_point_holds_until_midnight_even_when_won_back() -> None:
    # Known at 22:45 (−5), 23:15 (+6), together at 23:45 (−8 and +3), and at 00:30 (−2).
    slots = [closed_trade(1, 2, -5.0), closed_trade(2, 4, 6.0)]
    slots += [closed_trade(3, 6, -8.0), closed_trade(4, 6, 3.0), closed_trade(5, 9, -2.0)]
    values = values_at(ledger(slots), *range(1, 10))  # closes from 22:30 to 00:30
    np.testing.assert_allclose(values["today_profit"], [0, -5, -5, 1, 1, -4, 0, 0, -2], atol=1e-9)
    lowest = [0, -5, -5, -5, -5, -5, 0, 0, -2]  # −8 and +3 land together: never −7 at a close
    start = [1_000.0] * 6 + [996.0] * 3  # the next day starts with yesterday's −4
    np.testing.assert_allclose(values["today_lowest_profit_ratio"], np.divide(lowest, start))


def test_the_backtests_closing_of_what_is_open_at_the_end_is_not_known_before_it() -> None:
    long = trade("A/USDT", "long", 1, 100.0, 1.0)
    long.fills.append(Fill(candle(9), 101.0, 1.0, 0.0, END_OF_DATA))
    long.exit_time = candle(9)
    held = position(1, long, 100.0)
    held.release = held.settle = NEVER
    values = values_at(ledger([held]), 9)
    assert values["open_profit"][0] == pytest.approx(-0.2 + 1.0)  # still open, marked


def test_what_the_backtest_knows_of_the_future_is_masked_to_what_a_bot_knows() -> None:
    """The backtest holds each trade's whole path and computes many closes at once; at each
    close it must get exactly what the live runtime gets from what it holds then: the fills
    so far, on candles cut at that close, with settled profits in its books."""
    closes = [100.0, 100.0, 102.0, 104.0, 110.0, 105.0, 90.0, 95.0, 99.0, 101.0]
    fills = [Fill(candle(4), 110.0, 1.0, 0.11, "tp1"), Fill(candle(6), 90.0, 1.0, 0.09, "stop")]
    whole = trade("A/USDT", "long", 1, 100.0, 2.0)
    whole.fills += fills
    whole.exit_time = candle(6)
    held = position(1, whole, 200.0)
    held.release = held.settle = candle(7)  # the stop is known at the close of its candle
    swept = values_at(ledger([held]), *range(9))
    for k in range(9):
        if k < 6:
            known = trade("A/USDT", "long", 1, 100.0, 2.0)
            known.fills += [f for f in fills if f.time <= candle(k)]
            book = ledger([position(1, known if k >= 1 else None, 200.0)])
        else:
            closed = [(candle(7), candle(6), whole.profit)]
            book = ledger([], closed=closed, realized=whole.profit)
        cut = {"A/USDT": pair_data("A/USDT", closes[: k + 1])}
        seen = values_at(replace(book, market=cut), k)
        for name, values in swept.items():
            np.testing.assert_array_equal(values[k], seen[name][0], err_msg=f"{name} at {k}")


def test_a_pair_without_a_candle_at_the_close_is_marked_at_its_last_one() -> None:
    gappy = pair_data("A/USDT", [100.0, 100.0, 102.0, 104.0, 110.0, 105.0], gaps=(4,))
    long = trade("A/USDT", "long", 1, 100.0, 1.0)
    values = values_at(ledger([position(1, long, 100.0)], market={"A/USDT": gappy}), 4)
    assert values["open_profit"][0] == pytest.approx(-0.2 + 4.0)


def test_correlated_exposure_counts_the_slots_on_pairs_moving_with_this_one() -> None:
    rng = np.random.default_rng(6)
    walk = 100 * np.cumprod(1 + rng.normal(0, 0.01, 40))
    closes = {
        "TWIN/USDT": 2 * walk,  # the same returns
        "MIRROR/USDT": 200 - walk,  # opposite moves
        "OTHER/USDT": 50 * np.cumprod(1 + rng.normal(0, 0.01, 40)),
        "GAP/USDT": 3 * walk,  # the same returns, but candle 35 is missing
    }
    stakes = {"TWIN/USDT": 100.0, "MIRROR/USDT": 200.0, "OTHER/USDT": 50.0, "GAP/USDT": 70.0}
    market = {"A/USDT": pair_data("A/USDT", list(walk))}
    for pair, values in closes.items():
        market[pair] = pair_data(pair, list(values), gaps=(35,) if pair == "GAP/USDT" else ())
    slots = [position(i, None, stakes[pair], pair) for i, pair in enumerate(stakes)]
    env = decision_env(ledger(slots, market=market), market["A/USDT"], candle(39) + STEP)
    measure = env["correlated_exposure"]
    assert callable(measure)

    def expected(threshold: float, lookback: int) -> float:
        """Pearson on the last `lookback` returns; a missing candle leaves it undefined."""
        mine = np.diff(walk[-lookback - 1 :]) / walk[-lookback - 1 : -1]
        total = 0.0
        for pair, values in closes.items():
            if pair == "GAP/USDT" and lookback >= 40 - 35 - 1:
                continue
            theirs = np.diff(values[-lookback - 1 :]) / values[-lookback - 1 : -1]
            if np.corrcoef(mine, theirs)[0, 1] > threshold:
                total += stakes[pair]
        return total / 1_000.0

    assert measure(0.7, 20) == pytest.approx(expected(0.7, 20)) == pytest.approx(0.1)
    assert measure(0.7, 3) == pytest.approx(expected(0.7, 3))  # the gap is older: GAP counts
    assert measure(0.7, 3) >= 0.17
    assert measure(-0.5, 20) == pytest.approx(expected(-0.5, 20))
    assert env["exposure"] == pytest.approx(0.42)


@st.composite
def books(draw: st.DrawFn) -> Ledger:
    """A portfolio with a few trades at any stage: pending, open, partly sold, closed."""
    walk = draw(st.lists(st.floats(0.95, 1.05), min_size=30, max_size=30))
    closes = list(100 * np.cumprod(walk))
    market = {
        p: pair_data(p, closes if p == "A/USDT" else closes[::-1]) for p in ("A/USDT", "B/USDT")
    }
    slots = []
    for id in range(1, draw(st.integers(1, 5)) + 1):
        pair = draw(st.sampled_from(sorted(market)))
        entry = draw(st.integers(1, 20))
        made = trade(pair, draw(st.sampled_from(["long", "short"])), entry, closes[entry], 1.0)
        sells = draw(st.lists(st.integers(entry, 28), max_size=3, unique=True))
        for k, at in enumerate(sorted(sells)):
            made.fills.append(Fill(candle(at), closes[at], 0.25 * (k + 1) / 2, 0.01, f"tp{k}"))
        held = position(id, made if draw(st.booleans()) else None, 100.0, pair)
        if draw(st.booleans()) and sells:  # closed: the last sale took what was left
            last = made.fills[-1]
            made.fills[-1] = Fill(
                last.time, last.price, 1.0 - sum(f.amount for f in made.fills[1:-1]), 0.0, "exit"
            )
            made.exit_time = last.time
            held.release = held.settle = last.time + STEP
        slots.append(held)
    closed = [(candle(0), candle(0), draw(st.floats(-50, 50)))]
    return ledger(slots, closed=closed, market=market, realized=draw(st.floats(-100, 100)))


@given(books(), st.integers(0, 28))
def test_a_close_computed_with_others_equals_it_computed_alone(book: Ledger, first: int) -> None:
    """The backtest computes many closes at once, the live runtime one: same bits."""
    many = values_at(book, *range(first, 29))
    for offset, k in enumerate(range(first, 29)):
        alone = values_at(book, k)
        for name, values in many.items():
            np.testing.assert_array_equal(values[offset], alone[name][0], err_msg=name)


@given(books(), st.integers(0, 28))
def test_one_close_in_plain_numbers_equals_it_in_an_array(book: Ledger, k: int) -> None:
    """A decision computes its close's values on scalars: the same bits as the arrays."""
    moment = candle(k) + STEP
    plain = standing_at(book, moment)
    array = standing(book, pd.DatetimeIndex([moment]))
    for name, values in array.values.items():
        assert not isinstance(plain.values[name], np.ndarray)
        np.testing.assert_array_equal(plain.values[name], values[0], err_msg=name)
    assert [p.id for p, _ in plain.held] == [p.id for p, _ in array.held]
    for (_, one), (_, many) in zip(plain.held, array.held, strict=True):
        np.testing.assert_array_equal(one, many[0])
