"""A runtime stand-in for the crash test: opens, moves and closes trades until killed,
printing a line after each commit so the test knows what must have survived.

Usage: python crash_writer.py DB_URL SEED
"""

from __future__ import annotations

import random
import sys

import pandas as pd

from kinetic_rules.engine.model import Fill, Trade
from kinetic_rules.persist import TradeStore

PAIRS = ("BTC/USDT", "ETH/USDT", "SOL/USDT")
BASE = pd.Timestamp("2024-01-01", tz="UTC")


def main(url: str, seed: int) -> None:
    rng = random.Random(seed)
    with TradeStore(url, retry_interval=0.05) as store:
        print("ready", flush=True)
        while True:
            # Candles repeat across runs and within one: a replay must not duplicate.
            candle, pair = rng.randrange(300), rng.choice(PAIRS)
            at = BASE + pd.Timedelta(minutes=5 * candle)
            price = 1.0 + (candle * 7 + len(pair)) % 100
            trade = Trade(
                0, pair, "long", "bull", at - pd.Timedelta("5min"), at, price, 2.0, 2 * price,
                1.0, price * 0.9, stop=price * 0.9, fills=[Fill(at, price, 2.0, 0.01, "entry")],
            )  # fmt: skip
            trade_id = store.open_trade(trade, strategy="crash", mode="paper")
            print(f"opened {trade_id}", flush=True)
            if rng.random() < 0.5:
                store.update_stop(trade_id, price * 0.95, at + pd.Timedelta("30min"))
                last = Fill(at + pd.Timedelta("1h"), price * 1.01, 2.0, 0.01, "trend_break")
                store.close_trade(
                    trade_id, exit_time=last.time, exit_price=last.price,
                    exit_reason=last.reason, stop=price * 0.95, fill=last,
                )  # fmt: skip
                print(f"closed {trade_id}", flush=True)


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))
