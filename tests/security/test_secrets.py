"""Secrets never leave the process in clear: one mask for the screen, logs, crash reports,
reports and the trade database."""

from __future__ import annotations

import logging
import textwrap
from pathlib import Path

import pytest

from kinetic_rules.live.robust import Redactor
from kinetic_rules.persist.connect import mask as mask_url
from kinetic_rules.secrets import environment_secrets, mask, mask_argv, register_url
from tests.conftest import STRATEGIES
from tests.security.helpers import environment, python

DB_PASSWORD = "p@ss:w@rd"
DB_URL = f"postgresql://trader:{DB_PASSWORD}@db.example:5432/trades"
ENV = {
    "KINETIC_API_KEY": "vmPUZE6mv9SD5VNHk4HlWFsOr6aKE2zvsw0MuIgwCIPy6utIco14y7Ju91duEh8A",
    "KINETIC_API_SECRET": "NhqPtmdSJYdKjVHjA7PZj4Mge3R5YNiP1e3UZjInClVN65XAbvqqM6A7H5fATj0j",
    "KINETIC_TELEGRAM_TOKEN": "7012345678:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw",
    "KINETIC_RULES_DB": "postgresql://envuser:Env-Pa55word@dbhost/kr",
    "KINETIC_EXCHANGE_PASSWORD": "tradingPassphrase42",
}
SECRETS = [
    DB_PASSWORD,
    "p%40ss%3Aw%40rd",  # the same password, URL-encoded
    ENV["KINETIC_API_KEY"],
    ENV["KINETIC_API_SECRET"],
    ENV["KINETIC_TELEGRAM_TOKEN"],
    "Env-Pa55word",
    ENV["KINETIC_EXCHANGE_PASSWORD"],
]


def test_url_credentials_are_masked_even_with_unencoded_at_and_colon() -> None:
    assert mask(f"connecting to {DB_URL} now") == (
        "connecting to postgresql://trader:***@db.example:5432/trades now"
    )
    assert mask("sqlite:///user_data/trades.sqlite") == "sqlite:///user_data/trades.sqlite"
    assert mask("https://ghp_0123456789abcdef@github.com/x") == "https://***@github.com/x"
    assert mask("see https://example.com/people/@alice") == "see https://example.com/people/@alice"
    assert mask_url(DB_URL) == "postgresql://trader:***@db.example:5432/trades"
    assert DB_PASSWORD not in mask_argv(["run", "--db", DB_URL, f"--db={DB_URL}"])
    assert "with space" not in mask_argv(["--db", "mysql://u:with space@h/db"])


def test_environment_secrets_and_token_shapes_are_masked(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("KINETIC_RULES_DATA", "user_data/data")  # not a secret: kept
    assert "user_data/data" not in environment_secrets()
    register_url(DB_URL)  # what the CLI does with each --db it is given
    text = " | ".join([*SECRETS, "Authorization: Bearer abcdefghijklmnop", "user_data/data"])
    shown = mask(text)
    for secret in [*SECRETS, "abcdefghijklmnop"]:
        assert secret not in shown
    assert "user_data/data" in shown and "***" in shown
    # a token of the right shape is hidden even when no variable holds it
    monkeypatch.delenv("KINETIC_TELEGRAM_TOKEN")
    assert "AAHdq" not in mask(
        "GET https://api.telegram.org/bot1234567:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw/getMe"
    )


def test_the_exchange_redactor_is_the_same_mask() -> None:
    redact = Redactor(["my-exchange-key-123", None, ""])
    assert redact(f"key my-exchange-key-123 url {DB_URL}") == (
        "key *** url postgresql://trader:***@db.example:5432/trades"
    )


def test_log_records_are_masked_whoever_logs_them(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from kinetic_rules.secrets import install_log_masking

    monkeypatch.setenv("KINETIC_API_SECRET", ENV["KINETIC_API_SECRET"])
    install_log_masking()
    with caplog.at_level(logging.INFO):
        logging.getLogger("httpx.some.child").info(
            "POST %s with %s", DB_URL, ENV["KINETIC_API_SECRET"]
        )
    assert DB_PASSWORD not in caplog.text and ENV["KINETIC_API_SECRET"] not in caplog.text


FAILING_RUN = textwrap.dedent('''
    """Two commands that fail with an internal error after writing everything they write."""
    import json, logging, os, sys
    import pandas as pd
    from kinetic_rules.cli import app, trades_cmd
    import kinetic_rules.backtest.export as export
    from kinetic_rules.engine.orders import Event
    from kinetic_rules.persist.store import TradeStore

    db_file, strategy, data, report, db_url = sys.argv[1:6]
    held = [v for k, v in sorted(os.environ.items()) if k.startswith("KINETIC_")]

    def leaky_trades(args):
        said = " ".join([args.db, *held])
        logging.getLogger("kinetic_rules.live").warning("connecting: %s", said)
        print("about to fail:", said)
        print("still failing:", said, file=sys.stderr)
        with TradeStore(f"sqlite:///{db_file}") as store:
            now = pd.Timestamp("2024-03-04 10:00", tz="UTC")
            store.log_event(Event("error", now, f"failed: {said}", {"url": args.db, "keys": held}))
            store.set_state("last_error", json.dumps({"said": said}))
        raise RuntimeError(f"cannot reach {said}")

    def broken_export(*args, **kwargs):
        raise ConnectionError(f"upload to {db_url} with {held} failed")

    trades_cmd.run_trades = leaky_trades
    export.write_signals = broken_export
    first = app.main(["trades", "--db", db_url])
    second = app.main(["backtest", strategy, "--data", data, "--report", report,
                       "--export", "signals", "--quiet"])
    sys.exit(0 if (first, second) == (1, 1) else 3)
''')


def test_a_failing_run_writes_no_secret_anywhere(fixture_store: Path, tmp_path: Path) -> None:
    crash_dir, report = tmp_path / "tmp", tmp_path / "report"
    crash_dir.mkdir()
    strategy = tmp_path / "leaky.yaml"
    text = (STRATEGIES / "kinetic_empire.yaml").read_text()
    assert "name: Kinetic Empire\n" in text
    strategy.write_text(text.replace("name: Kinetic Empire\n", f'name: "KE {DB_URL}"\n', 1))
    db_file = tmp_path / "events.sqlite"
    env = environment(TMPDIR=str(crash_dir), **ENV)
    args = (str(db_file), str(strategy), str(fixture_store), str(report), DB_URL)
    done = python(FAILING_RUN, *args, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    crashes = sorted(crash_dir.glob("kinetic-rules-crash-*.txt"))
    assert len(crashes) == 2
    assert (
        "RuntimeError: cannot reach postgresql://trader:***@db.example"
        in crashes[0].read_text() + crashes[1].read_text()
    )
    written = [*crashes, *sorted(report.iterdir()), *sorted(tmp_path.glob("events.sqlite*"))]
    assert {p.name for p in written} >= {
        "results.json",
        "trades.json",
        "trades.csv",
        "report.html",
        "events.sqlite",
    }
    outputs = {"stdout": done.stdout, "stderr": done.stderr}
    outputs.update({str(p): p.read_bytes().decode("utf-8", "replace") for p in written})
    assert "about to fail" in done.stdout and "connecting: " in done.stderr
    assert "internal error" in done.stderr
    assert "failed: postgresql://trader:***@db.example" in outputs[str(db_file)]  # masked, kept
    assert "KE postgresql://trader:***@db.example" in (report / "results.json").read_text()
    for where, content in outputs.items():
        for secret in SECRETS:
            assert secret not in content, f"{secret!r} in {where}"
