"""The data commands as users run them: `kinetic_rules.cli.app.main([...])`."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from kinetic_rules.cli.app import main
from kinetic_rules.data.store import DATA_ENV
from tests.data.helpers import CSV_DIR, FEATHER_DIR, csv_lines, snapshot, write_csv
from tests.standin import ExchangeStandin


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_import_then_list(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = str(tmp_path / "store")
    code, out, _ = run(capsys, "data", "import", str(CSV_DIR), str(FEATHER_DIR), "--data", data)
    assert code == 0
    assert "✓ BTCUSDT-15m.csv.gz (BTC/USDT 15m): 2,784 candles" in out
    assert "imported 18 of 18 files" in out
    code, out, _ = run(capsys, "data", "list", "--data", data)
    assert code == 0
    btc_5m = next(line for line in out.splitlines() if "BTC/USDT" in line and " 5m " in line)
    assert "2024-02-15 00:00" in btc_5m and "2024-03-14 23:55" in btc_5m and "8,352" in btc_5m
    assert "estimated*" in btc_5m
    assert "* estimated as volume × close" in out
    code, out, _ = run(
        capsys,
        "data",
        "list",
        "--data",
        data,
        "--pairs",
        "ETH/USDT",
        "--timeframes",
        "1d,1h",
        "--format",
        "json",
    )
    rows = json.loads(out)
    assert [(r["pair"], r["timeframe"], r["candles"]) for r in rows] == [
        ("ETH/USDT", "1h", len(csv_lines("ETHUSDT-1h.csv.gz"))),
        ("ETH/USDT", "1d", len(csv_lines("ETHUSDT-1d.csv.gz"))),
    ]
    assert rows[0]["quote_volume_estimated"] is False


def test_a_corrupted_file_is_reported_and_the_store_kept(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "store"
    run(capsys, "data", "import", str(CSV_DIR / "BTCUSDT-1h.csv.gz"), "--data", str(data))
    before = snapshot(data)
    lines = csv_lines("BTCUSDT-1h.csv.gz")
    fields = lines[41].split(",")
    fields[2], fields[3] = fields[3], fields[2]
    lines[41] = ",".join(fields)
    bad = write_csv(tmp_path / "BTCUSDT-1h.csv.gz", lines)
    code, out, err = run(capsys, "data", "import", str(bad), "--data", str(data))
    assert code == 1 and err.splitlines()[0].startswith("checking (1): ")  # phases only
    assert len(err.splitlines()) == 1  # nothing stored: no "storing" phase, no error
    assert "✗ BTCUSDT-1h.csv.gz (BTC/USDT 1h): rejected, 1,776 rows read" in out
    assert "error: high below low: 1 row; e.g. line 42 (2024-01-02 17:00): high" in out
    assert "--drop-bad-rows" in out
    assert snapshot(data) == before
    code, out, _ = run(capsys, "data", "import", str(bad), "--data", str(data), "--drop-bad-rows")
    assert code == 0 and "warning: high below low" in out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["data", "import", "nowhere.csv"], "nowhere.csv: no such file or directory"),
        (["data", "import", str(CSV_DIR), "--timeframe", "7m"], "unknown timeframe '7m'"),
        (["data", "import", str(CSV_DIR), "--pair", "BTCUSDT"], "did you mean BTC/USDT?"),
        (["download", "--exchange", "binanse", "--pairs", "BTC/USDT"], "did you mean binance"),
        (["download", "--pairs", "BTC/USDT", "--timerange", "2024-01-01"], "is not a timerange"),
    ],
)
def test_user_errors_exit_2_without_a_traceback(
    argv: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run(capsys, *argv, "--data", str(tmp_path / "store"))
    assert code == 2
    assert err.startswith("error: ") and message in err
    assert "Traceback" not in err
    assert not (tmp_path / "store").exists()


def test_the_store_location_follows_flag_env_and_default(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv(DATA_ENV, raising=False)
    code, out, _ = run(capsys, "data", "list")
    assert code == 0 and "no candles stored in user_data/data" in out
    run(capsys, "data", "import", str(CSV_DIR / "ETHUSDT-1d.csv.gz"), "--quiet")
    assert (tmp_path / "user_data" / "data" / "binance" / "ETH_USDT-1d.parquet").exists()
    monkeypatch.setenv(DATA_ENV, str(tmp_path / "elsewhere"))
    code, out, _ = run(capsys, "data", "import", str(CSV_DIR / "BTCUSDT-1d.csv.gz"), "--quiet")
    assert out.strip() == "imported 1 of 1 files"  # --quiet: the summary line only
    assert (tmp_path / "elsewhere" / "binance" / "BTC_USDT-1d.parquet").exists()


@pytest.fixture
def standin() -> Iterator[ExchangeStandin]:
    with ExchangeStandin.from_fixtures() as exchange:
        yield exchange


def test_download_through_the_cli(
    standin: ExchangeStandin, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = [
        "download",
        "--exchange",
        "binance",
        "--pairs",
        "BTC/USDT,ETH/USDT",
        "--timeframes",
        "1d",
        "--timerange",
        "20240101-",
        "--data",
        str(tmp_path / "store"),
        "--exchange-url",
        standin.url,
    ]
    code, out, err = run(capsys, *args)
    assert code == 0, err
    assert "BTC/USDT   1d          +74 candles in 1 request" in out
    assert "BTC/USDT 1d: +74 candles in 1 request" in err  # not a TTY: one line per series
    code, out, _ = run(capsys, *args)
    assert code == 0 and out.count("up to date") == 2
    code, out, _ = run(capsys, "data", "list", "--data", str(tmp_path / "store"))
    assert "2024-01-01 00:00   2024-03-14 00:00" in out and "exchange" in out


def test_a_failed_download_exits_2_with_the_reason(
    standin: ExchangeStandin, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    standin.faults.reject_next(
        1,
        code=-2015,
        msg="Invalid API-key, IP, or permissions for action.",
        status=401,
        path="/api/v3/klines",
    )
    code, out, err = run(
        capsys,
        "download",
        "--pairs",
        "ETH/USDT",
        "--timeframes",
        "1h",
        "--timerange",
        "20240301-",
        "--data",
        str(tmp_path / "store"),
        "--exchange-url",
        standin.url,
        "--quiet",
    )
    assert code == 2
    assert "error: binance: ETH/USDT 1h candles from 2024-03-01 00:00 failed" in err
    assert "Invalid API-key" in err and "Traceback" not in err
    assert "failed after 0 new candles (kept)" in out


def test_dry_run_checks_without_storing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "store"
    code, out, _ = run(capsys, "data", "import", str(CSV_DIR), "--data", str(data), "--dry-run")
    assert code == 0 and "checked 6 of 6 files" in out
    assert not (data / "binance").exists()
