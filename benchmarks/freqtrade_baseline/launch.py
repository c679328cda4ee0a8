"""Run freqtrade offline: `python launch.py CONFIG freqtrade-args…`, inside freqtrade's own
virtual environment.

freqtrade loads the exchange's markets over the network when it starts, even for a
backtest from files. This machine (and CI) has no exchange to ask, so the markets are
made up here for the config's pairs: spot, active, no minimum order and prices and
amounts to 1e-8 — as kinetic-rules backtests without a markets file. Nothing else of
freqtrade is changed.
"""

from __future__ import annotations

import json
import sys
from typing import Any


def offline_markets(pairs: list[str], fee: float) -> list[dict[str, Any]]:
    markets = []
    for pair in pairs:
        base, quote = pair.split("/")
        markets.append(
            {
                "id": base + quote,
                "symbol": pair,
                "base": base,
                "quote": quote,
                "baseId": base,
                "quoteId": quote,
                "settle": None,
                "settleId": None,
                "type": "spot",
                "spot": True,
                "margin": False,
                "swap": False,
                "future": False,
                "option": False,
                "active": True,
                "contract": False,
                "linear": None,
                "inverse": None,
                "contractSize": None,
                "taker": fee,
                "maker": fee,
                "precision": {"amount": 1e-8, "price": 1e-8},
                "limits": {
                    "amount": {"min": None, "max": None},
                    "price": {"min": None, "max": None},
                    "cost": {"min": None, "max": None},
                    "leverage": {"min": None, "max": None},
                },
                "info": {},
            }
        )
    return markets


def main() -> None:
    config_path, args = sys.argv[1], sys.argv[2:]
    with open(config_path) as file:
        config = json.load(file)
    pairs = sorted({*config["exchange"]["pair_whitelist"], "BTC/USDT"})
    markets = offline_markets(pairs, config["fee"])

    import ccxt.async_support

    async def load_offline(self: Any, reload: bool = False, params: Any = None) -> Any:
        return self.set_markets(markets)

    ccxt.async_support.Exchange.load_markets_helper = load_offline

    from freqtrade.main import main as freqtrade_main

    freqtrade_main(args)


if __name__ == "__main__":
    main()
