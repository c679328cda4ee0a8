"""`kinetic-rules` as its own process, living in the exchange stand-in's time.

    python -m tests.live.bot_process STANDIN_URL run FILE --live ...

The process's clocks read the stand-in's clock and its sleeps move it forward, so a
session of hours passes in seconds while everything else — the command line, the
session, the store, the ccxt client — is the real program. The SIGKILL tests start it,
kill it at chosen moments and start it again.
"""

from __future__ import annotations

import json
import sys
import time
import urllib.request


def _call(url: str) -> float:
    """The stand-in's clock in seconds (POSTing to /standin/advance moves it first)."""
    method = "POST" if "advance" in url else "GET"
    with urllib.request.urlopen(urllib.request.Request(url, method=method), timeout=10) as reply:
        return float(json.load(reply)["serverTime"]) / 1000


def install(base: str) -> None:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    urllib.request.install_opener(opener)  # loopback only: never through a proxy
    # Only this process moves the stand-in's clock while it runs, so it keeps its own
    # copy and asks the stand-in once, instead of at every one of ccxt's time.time().
    clock = [_call(f"{base}/api/v3/time")]

    def now() -> float:
        return clock[0]

    def sleep(seconds: float) -> None:
        if seconds > 0:
            clock[0] = _call(f"{base}/standin/advance?ms={int(seconds * 1000)}")

    time.time = now  # ccxt's nonces and throttle, the pacer, the fail-safe
    time.monotonic = now
    time.sleep = sleep


def main() -> int:
    base, argv = sys.argv[1], sys.argv[2:]
    install(base)
    import pandas as pd

    from kinetic_rules.cli import run_cmd
    from kinetic_rules.cli.app import main as cli

    run_cmd.now = lambda: pd.Timestamp(time.time(), unit="s", tz="UTC")  # type: ignore[assignment]
    return cli(argv)


if __name__ == "__main__":
    sys.exit(main())
