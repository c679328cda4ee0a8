"""`kinetic-rules trades` as a user runs it: filters, the three formats, --output."""

from __future__ import annotations

import argparse
import csv
import io
import json
import sys
from pathlib import Path

import pandas as pd
import pytest

from kinetic_rules.cli import trades_cmd
from kinetic_rules.engine.model import Fill, Trade
from kinetic_rules.errors import KineticError
from kinetic_rules.persist import DB_ENV, TradeStore, deserialize_trades
from tests.persist.conftest import db_url

T0 = pd.Timestamp("2024-03-04 10:05", tz="UTC")


def cli(argv: list[str]) -> int:
    """What `kinetic-rules` does with the command (app.main, limited to this command)."""
    from kinetic_rules.cli import app

    parser = app.build_parser()
    commands = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    if "trades" not in commands[0].choices:  # not wired into the app yet
        parser = argparse.ArgumentParser(prog="kinetic-rules")
        trades_cmd.register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    try:
        code: int = args.handler(args)
    except KineticError as error:
        print(error.render(), file=sys.stderr)
        return error.exit_code
    return code


def trade(pair: str, hours: int, exit_price: float | None) -> Trade:
    at = T0 + pd.Timedelta(hours=hours)
    made = Trade(0, pair, "long", "bull", at - pd.Timedelta("5min"), at, 100.0, 1.0, 100.0, 1.0,
                 95.0, fills=[Fill(at, 100.0, 1.0, 0.1, "entry")])  # fmt: skip
    if exit_price is not None:
        out = at + pd.Timedelta("2h")
        made.fills.append(
            Fill(out, exit_price, 1.0, 0.1, "stop_loss" if exit_price < 100 else "tp")
        )
        made.exit_time, made.exit_price, made.exit_reason = out, exit_price, made.fills[-1].reason
        made.stop = 95.0
    return made


@pytest.fixture
def db(tmp_path: Path) -> str:
    url = db_url(tmp_path / "trades.sqlite")
    with TradeStore(url) as store:
        store.open_trade(trade("SOL/USDT", 0, 110.0), strategy="ke", mode="paper")  # win
        store.open_trade(trade("SOL/USDT", 5, 90.0), strategy="ke", mode="paper")  # loss
        store.open_trade(trade("ETH/USDT", 10, None), strategy="ke", mode="live")  # open
        store.open_trade(trade("=HYPERLINK/USDT", 12, None), strategy="v3", mode="paper")
    return url


def test_the_table_lists_every_trade_with_a_summary(
    db: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli(["trades", "--db", db]) == 0
    out = capsys.readouterr().out
    for text in (
        "SOL/USDT",
        "ETH/USDT",
        "2024-03-04 10:05",
        "+9.8000",
        "+9.80%",
        "stop_loss",
        "-10.2000",
        "open",
        "4 trade(s): 2 open, 1 won, 1 lost; closed profit -0.4000",
    ):
        assert text in out  # fmt: skip


def test_filters_combine(db: str, capsys: pytest.CaptureFixture[str]) -> None:
    def ids(*flags: str) -> list[int]:
        assert cli(["trades", "--db", db, "--format", "json", *flags]) == 0
        return [t.id for t in deserialize_trades(capsys.readouterr().out)]

    assert ids() == [1, 2, 3, 4]
    assert ids("--pair", "sol/usdt") == [1, 2]
    assert ids("--outcome", "win") == [1] and ids("--outcome", "loss") == [2]
    assert ids("--outcome", "open") == [3, 4]
    assert ids("--from", "2024-03-04T15:05") == [2, 3, 4]  # inclusive
    assert ids("--to", "2024-03-04 20:05Z") == [1, 2]  # exclusive
    assert ids("--from", "20240304", "--to", "2024-03-05") == [1, 2, 3, 4]
    assert ids("--strategy", "v3") == [4] and ids("--mode", "live") == [3]
    assert ids("--limit", "2") == [3, 4]
    assert ids("--pair", "BTC/USDT") == []


def test_json_is_the_round_trip_serialization_and_csv_is_one_row_per_trade(
    db: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "trades.json"
    assert cli(["trades", "--db", db, "--format", "json", "--output", str(out)]) == 0
    assert "wrote 4 trade(s)" in capsys.readouterr().err
    with TradeStore(db) as store:
        assert deserialize_trades(out.read_text()) == store.trades()
    assert json.loads(out.read_text())[0]["profit"] == pytest.approx(9.8)

    sheet = tmp_path / "trades.csv"
    assert cli(["trades", "--db", db, "--format", "csv", "-o", str(sheet)]) == 0
    rows = list(csv.DictReader(io.StringIO(sheet.read_text())))
    assert [r["pair"] for r in rows] == ["SOL/USDT", "SOL/USDT", "ETH/USDT", "'=HYPERLINK/USDT"]
    assert rows[0]["entry_time"] == "2024-03-04T10:05:00+00:00" and rows[2]["exit_time"] == ""
    assert float(rows[1]["profit"]) == pytest.approx(-10.2)

    text = tmp_path / "trades.txt"
    assert cli(["trades", "--db", db, "--outcome", "win", "-o", str(text)]) == 0
    assert "SOL/USDT" in text.read_text() and "ETH/USDT" not in text.read_text()


def test_an_empty_result_is_not_an_error(db: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli(["trades", "--db", db, "--pair", "BTC/USDT"]) == 0
    assert "No trades match." in capsys.readouterr().out
    assert cli(["trades", "--db", db, "--pair", "BTC/USDT", "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out) == []


def test_the_database_comes_from_the_environment(
    db: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv(DB_ENV, db)
    assert cli(["trades", "--format", "csv"]) == 0
    assert capsys.readouterr().out.count("\n") == 5


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--from", "yesterday-ish"], "is not a time"),
        (["--outcome", "draw"], "invalid choice"),
        (["--limit", "0"], "0 is not between 1 and"),
        (["--format", "xml"], "invalid choice"),
    ],
)
def test_bad_flags_exit_2_with_a_message(
    db: str, flags: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        cli(["trades", "--db", db, *flags])
    assert exited.value.code == 2 and message in capsys.readouterr().err


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--from", "2024-03-05", "--to", "2024-03-04"], "is not before --to"),
        (["--pair", "not a pair"], "pair"),
        (["--output", "/nonexistent/dir/x.json"], "does not exist"),
    ],
)
def test_wrong_values_are_config_errors(
    db: str, flags: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli(["trades", "--db", db, *flags]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_a_missing_or_broken_database_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli(["trades", "--db", db_url(tmp_path / "nope.sqlite")]) == 2
    assert "no trade database" in capsys.readouterr().err
    assert not (tmp_path / "nope.sqlite").exists()  # listing never creates a database
    junk = tmp_path / "junk.sqlite"
    junk.write_text("not a database at all, just text\n" * 50)
    assert cli(["trades", "--db", db_url(junk)]) == 2
    assert "not a usable SQLite database" in capsys.readouterr().err
    assert cli(["trades", "--db", "postgresql://bob:s3cret@localhost/x"]) == 2
    assert "s3cret" not in capsys.readouterr().err


def test_tag_filters_by_a_whole_tag_and_shows_the_tags(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = db_url(tmp_path / "tagged.sqlite")
    tagged = {"keltner trend": 0, "trend_x": 3, "mean_reversion": 6, "": 9}
    with TradeStore(url) as store:
        for tags, hours in tagged.items():
            made = trade("SOL/USDT", hours, 110.0)
            made.tags = tuple(tags.split())
            store.open_trade(made, strategy="confluence", mode="paper")
    assert cli(["trades", "--db", url, "--tag", "trend", "--format", "json"]) == 0
    found = deserialize_trades(capsys.readouterr().out)
    assert [t.tags for t in found] == [("keltner", "trend")]  # not trend_x
    assert cli(["trades", "--db", url, "--tag", "mean_reversion"]) == 0
    out = capsys.readouterr().out
    assert "Tags" in out and "mean_reversion" in out and "keltner" not in out
    assert cli(["trades", "--db", url, "--tag", "mean%"]) == 0  # no wildcards
    assert "No trades match." in capsys.readouterr().out
    assert cli(["trades", "--db", url, "--format", "csv"]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert [r["tags"] for r in rows] == ["keltner trend", "trend_x", "mean_reversion", ""]
