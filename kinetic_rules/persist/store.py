"""TradeStore: the live runtime's memory. Trades, their fills, orders, the event log and
a little resume state, in any SQLAlchemy database (SQLite by default).

Every public method is one transaction, so a crash at any moment leaves each trade
either wholly written or not at all. Writes that a restarted runtime may repeat are
idempotent: opening the same trade again returns its id, a fill already recorded is not
recorded twice, an order is upserted by its client id. A database that is locked or
unreachable is retried (3 × 5 s by default); then StoreError says to halt.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Literal, TypeVar

import pandas as pd
from sqlalchemy import literal, select
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.orm import Session, selectinload

from kinetic_rules.engine.model import Fill, Trade
from kinetic_rules.engine.orders import Event, OrderState
from kinetic_rules.errors import ConfigError, KineticError
from kinetic_rules.persist import connect, feed, migrations, records
from kinetic_rules.persist.models import (
    MODES,
    SIDES,
    EventRow,
    OrderRow,
    StateRow,
    TradeRow,
)
from kinetic_rules.persist.serialize import plain_json
from kinetic_rules.secrets import mask

T = TypeVar("T")
Outcome = Literal["win", "loss", "open"]
TimeLike = pd.Timestamp | datetime | str
StoreError = connect.StoreError

log = logging.getLogger(__name__)


class TradeStore:
    """One database. Open it, call it after every state change, close it at shutdown."""

    def __init__(
        self,
        url: str | None = None,
        *,
        create: bool = True,
        read_only: bool = False,
        retries: int = 3,
        retry_interval: float = 5.0,
        busy_timeout: float = 5.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        """Open (and with `create`, create) the database and migrate it to the newest
        schema. `url`: None → $KINETIC_RULES_DB, else sqlite:///user_data/trades.sqlite.
        `read_only`: never create, migrate or convert anything; a database that is not a
        kinetic-rules trade database at the newest schema is refused (ConfigError)."""
        parsed = connect.parse_url(connect.resolve_url(url))
        self.where = connect.mask(parsed)  # safe to print: no password
        # A reader (`trades`) answers now or says why: waiting out retries would hang it.
        self.retries = 0 if read_only else retries
        self.retry_interval = retry_interval
        self._sleep = sleep
        # Threads may share a store (a chat command reading while the runtime writes);
        # its calls take turns, which in-memory SQLite's single connection needs.
        self._lock = threading.RLock()
        self._engine = connect.create(
            parsed,
            busy_timeout=busy_timeout,
            create_file=create and not read_only,
            read_only=read_only,
        )
        self._writer = self._engine.execution_options(**{connect.WRITE: True})
        try:
            # Only a database behind the code takes the write lock: a reader (the `trades`
            # command) must not queue behind a running bot to learn that nothing changed.
            if self._read(lambda s: migrations.check(s.connection(), self.where)):
                if read_only:
                    raise ConfigError(_not_ours(self._read(_is_stamped), self.where))
                self._write(lambda s: migrations.upgrade(s.connection(), self.where))
        except BaseException:
            self._engine.dispose()
            raise

    def close(self) -> None:
        self._engine.dispose()

    def __enter__(self) -> TradeStore:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    @property
    def revision(self) -> str | None:
        """The schema revision the database is at (the newest one, once open)."""
        heads = self._read(lambda s: migrations.current(s.connection()))
        return heads[0] if heads else None

    # -- trades ----------------------------------------------------------------------------

    def open_trade(self, trade: Trade, *, strategy: str, mode: str) -> int:
        """Store a trade and its fills; its id in the database. Opening a trade that is
        already stored (same strategy, mode, pair, side and entry time) changes nothing
        and returns the stored id. `trade.id` is ignored: the database assigns ids."""
        if mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(MODES)}, not {mode!r}")
        if trade.side not in SIDES:
            raise ValueError(f"side must be long or short, not {trade.side!r}")
        records.check_trade(trade)

        def existing(session: Session) -> int | None:
            query = select(TradeRow.id).where(
                TradeRow.strategy == strategy,
                TradeRow.mode == mode,
                TradeRow.pair == trade.pair,
                TradeRow.side == trade.side,
                TradeRow.entry_time == trade.entry_time,
            )
            return session.scalars(query).first()

        def insert(session: Session) -> int:
            found = existing(session)
            if found is not None:
                return found
            row = records.new_row(trade, strategy, mode)
            session.add(row)
            session.flush()
            return row.id

        try:
            return self._write(insert)
        except StoreError as error:
            # Another writer stored the same trade between our look-up and our insert.
            if isinstance(error.__cause__, IntegrityError):
                found = self._read(existing)
                if found is not None:
                    return found
            raise

    def add_fill(self, trade_id: int, fill: Fill) -> None:
        """Record one more execution; a fill identical to a recorded one is a repeat."""
        records.check_fill(fill)
        self._write(lambda s: records.append_fill(_get(s, trade_id), fill))

    def update_funding(self, trade_id: int, funding: float) -> None:
        """The funding the trade has paid (+) or received (−) so far; its profit, when it
        is closed, follows."""
        records.check_number("funding", funding)

        def work(session: Session) -> None:
            row = _get(session, trade_id)
            row.funding = funding
            if row.exit_time is not None:
                row.profit = records.to_trade(row).profit

        self._write(work)

    def update_stop(self, trade_id: int, stop: float, at: TimeLike) -> None:
        records.check_stop(stop)

        def work(session: Session) -> None:
            row = _get(session, trade_id)
            row.stop, row.stop_time = stop, pd.Timestamp(at)

        self._write(work)

    def close_trade(
        self,
        trade_id: int,
        *,
        exit_time: TimeLike,
        exit_price: float,
        exit_reason: str,
        stop: float | None,
        fill: Fill | None = None,
    ) -> None:
        """Mark a trade closed and store its profit. Give the final `fill` here to record
        it in the same transaction as the close; fills already added count as well."""
        records.check_number("exit_price", exit_price)
        records.check_stop(stop)
        if fill is not None:
            records.check_fill(fill)

        def work(session: Session) -> None:
            row = _get(session, trade_id)
            if fill is not None:
                records.append_fill(row, fill)
            row.exit_time, row.exit_price = pd.Timestamp(exit_time), exit_price
            row.exit_reason, row.stop = exit_reason, stop
            row.profit = records.to_trade(row).profit

        self._write(work)

    def open_trades(self, strategy: str | None = None, mode: str | None = None) -> list[Trade]:
        """The trades still open: what a restarted runtime takes over."""
        return self.trades(outcome="open", strategy=strategy, mode=mode)

    def trade(self, trade_id: int) -> Trade | None:
        def work(session: Session) -> Trade | None:
            row = session.get(TradeRow, trade_id, options=[selectinload(TradeRow.fills)])
            return None if row is None else records.to_trade(row)

        return self._read(work)

    def trades(
        self,
        *,
        pair: str | None = None,
        start: TimeLike | None = None,
        end: TimeLike | None = None,
        outcome: Outcome | None = None,
        strategy: str | None = None,
        mode: str | None = None,
        limit: int | None = None,
        tag: str | None = None,
    ) -> list[Trade]:
        """Trades matching every filter given, oldest entry first. `start` (inclusive)
        and `end` (exclusive) bound the entry time; win: closed with profit > 0, loss:
        closed with profit ≤ 0; `tag`: trades carrying that entry tag. `limit` keeps the
        most recent `limit` of them."""
        query = select(TradeRow).options(selectinload(TradeRow.fills))
        if pair is not None:
            query = query.where(TradeRow.pair == pair)
        if tag is not None:  # tags are stored space-separated: " a b " contains " a "
            spaced = literal(" ") + TradeRow.tags + literal(" ")
            query = query.where(spaced.contains(f" {tag} ", autoescape=True))
        if start is not None:
            query = query.where(TradeRow.entry_time >= pd.Timestamp(start))
        if end is not None:
            query = query.where(TradeRow.entry_time < pd.Timestamp(end))
        if strategy is not None:
            query = query.where(TradeRow.strategy == strategy)
        if mode is not None:
            query = query.where(TradeRow.mode == mode)
        if outcome == "open":
            query = query.where(TradeRow.exit_time.is_(None))
        elif outcome in ("win", "loss"):
            won = TradeRow.profit > 0 if outcome == "win" else TradeRow.profit <= 0
            query = query.where(TradeRow.exit_time.is_not(None), won)
        elif outcome is not None:
            raise ValueError(f"outcome must be win, loss or open, not {outcome!r}")
        newest_first = query.order_by(TradeRow.entry_time.desc(), TradeRow.id.desc())
        if limit is not None:
            newest_first = newest_first.limit(limit)
        rows = self._read(lambda s: [records.to_trade(r) for r in s.scalars(newest_first)])
        return rows[::-1]

    def closed_trades(
        self,
        *,
        limit: int,
        before: int | None = None,
        pair: str | None = None,
        side: str | None = None,
        reason: str | None = None,
        start: TimeLike | None = None,
        end: TimeLike | None = None,
    ) -> list[Trade]:
        """A page of closed trades, newest (highest id) first: at most `limit`, with ids
        below `before` (the cursor), read through the id index without the rest. `reason`:
        exit reasons containing it (a database may match it ignoring case: narrow it
        down if that matters); `start` (inclusive), `end` (exclusive): the entry time."""
        query = select(TradeRow).options(selectinload(TradeRow.fills))
        query = query.where(TradeRow.exit_time.is_not(None))
        if before is not None:
            query = query.where(TradeRow.id < before)
        if pair is not None:
            query = query.where(TradeRow.pair == pair)
        if side is not None:
            query = query.where(TradeRow.side == side)
        if reason:
            query = query.where(TradeRow.exit_reason.contains(reason, autoescape=True))
        if start is not None:
            query = query.where(TradeRow.entry_time >= pd.Timestamp(start))
        if end is not None:
            query = query.where(TradeRow.entry_time < pd.Timestamp(end))
        page = query.order_by(TradeRow.id.desc()).limit(max(0, limit))
        return self._read(lambda s: [records.to_trade(r) for r in s.scalars(page)])

    # -- orders ----------------------------------------------------------------------------

    def save_order(self, trade_id: int | None, order: OrderState) -> None:
        """Insert or update the order with this client id (its trade is kept if None)."""

        def work(session: Session) -> None:
            query = select(OrderRow).where(OrderRow.client_id == order.client_id)
            row = session.scalars(query).first()
            if row is None:
                row = OrderRow(client_id=order.client_id, trade_id=trade_id)
                session.add(row)
            elif trade_id is not None:
                row.trade_id = trade_id
            row.exchange_id, row.pair, row.status = order.exchange_id, order.pair, order.status
            row.kind, row.amount, row.filled = order.kind, order.amount, order.filled
            row.average, row.fee, row.updated = order.average, order.fee, order.updated
            row.reason = mask(order.reason) if order.reason else order.reason
            row.raw = mask(plain_json(order.raw))

        self._write(work)

    def orders(
        self, *, open_only: bool = False, pair: str | None = None, trade_id: int | None = None
    ) -> list[OrderState]:
        """Stored orders in the order they were first saved."""
        query = select(OrderRow).order_by(OrderRow.id)
        if open_only:
            query = query.where(OrderRow.status == "open")
        if pair is not None:
            query = query.where(OrderRow.pair == pair)
        if trade_id is not None:
            query = query.where(OrderRow.trade_id == trade_id)
        return self._read(lambda s: [records.to_order(r) for r in s.scalars(query)])

    # -- events and state ------------------------------------------------------------------

    def log_event(self, event: Event) -> None:
        data, message = mask(plain_json(event.data)), mask(event.message)
        row = EventRow(kind=event.kind, time=event.time, message=message, data=data)
        self._write(lambda s: s.add(row))

    def events(
        self,
        *,
        since: TimeLike | None = None,
        kinds: Iterable[str] | None = None,
        limit: int | None = None,
    ) -> list[Event]:
        """Logged events in order; `since` is inclusive. Values in `data` come back as
        JSON gives them (times as ISO strings)."""
        query = select(EventRow)
        if since is not None:
            query = query.where(EventRow.time >= pd.Timestamp(since))
        if kinds is not None:
            query = query.where(EventRow.kind.in_(list(kinds)))
        query = query.order_by(EventRow.time.desc(), EventRow.id.desc())
        if limit is not None:
            query = query.limit(limit)
        return self._read(lambda s: [records.to_event(r) for r in s.scalars(query)])[::-1]

    def state(self, key: str) -> str | None:
        return self._read(lambda s: s.scalar(select(StateRow.value).where(StateRow.key == key)))

    def state_updated(self, key: str) -> pd.Timestamp | None:
        """When the state `key` was last set (None: never): a reader keeping a large value
        decoded reads it again only when this changes."""
        return self._read(lambda s: s.scalar(select(StateRow.updated).where(StateRow.key == key)))

    def set_state(self, key: str, value: str) -> None:
        value = mask(value)

        def work(session: Session) -> None:
            now = pd.Timestamp.now(tz="UTC")
            row = session.get(StateRow, key)
            if row is None:
                session.add(StateRow(key=key, value=value, updated=now))
            else:
                row.value, row.updated = value, now

        self._write(work)

    # -- the dashboard's record of the session (see feed.py) --------------------------------

    def record_closes(self, records: list[feed.CloseRecord], keep: feed.Retention) -> None:
        """Closes' decisions, equity, candles and positions, oldest first; what outgrew
        `keep` and the candles before the last one's `candles_since` go, in the same
        transaction."""
        self._write(lambda s: feed.write_closes(s, records, keep))

    def decisions(self, limit: int) -> list[feed.StoredDecision]:
        """The newest `limit` entries of the decision feed, newest first."""
        return self._read(lambda s: feed.read_decisions(s, limit))

    def equity(self) -> list[feed.EquityAt]:
        """The equity at every recorded close, oldest first."""
        return self._read(feed.read_equity)

    def candles(self, pair: str, limit: int) -> list[feed.StoredCandle]:
        """The pair's newest `limit` recorded candles, oldest first."""
        return self._read(lambda s: feed.read_candles(s, pair, limit))

    def last_close(self) -> dict[str, object] | None:
        """The newest recorded close: its time, positions, pairs and scanner."""
        return self._read(feed.read_snapshot)

    # -- transactions ----------------------------------------------------------------------

    def _read(self, work: Callable[[Session], T]) -> T:
        return self._transaction(work, write=False)

    def _write(self, work: Callable[[Session], T]) -> T:
        return self._transaction(work, write=True)

    def _transaction(self, work: Callable[[Session], T], *, write: bool) -> T:
        """Run `work` in one transaction, retrying it whole while the database is locked
        or unreachable; any other failure, or the last retry's, is a StoreError."""
        bind = self._writer if write else self._engine
        attempt = 0
        while True:
            try:
                with (
                    self._lock,
                    Session(bind, expire_on_commit=False) as session,
                    session.begin(),
                ):
                    return work(session)
            except KineticError:
                raise
            except (SQLAlchemyError, sqlite3.Error) as error:
                unusable = connect.unusable(error, self.where)
                if unusable is not None:
                    raise unusable from None
                reason = _reason(error)
                if not connect.is_transient(error):
                    raise StoreError(f"the trade database {self.where} failed: {reason}") from error
                if attempt >= self.retries:
                    raise StoreError(
                        f"the trade database {self.where} is still unavailable after "
                        f"{attempt + 1} tries ({reason}); halting"
                    ) from error
                attempt += 1
                log.warning(
                    "trade database %s unavailable (%s); retry %d of %d in %g s",
                    self.where, reason, attempt, self.retries, self.retry_interval,
                )  # fmt: skip
                self._sleep(self.retry_interval)


# -- helpers -------------------------------------------------------------------------------


def _is_stamped(session: Session) -> bool:
    return bool(migrations.current(session.connection()))


def _not_ours(stamped: bool, where: str) -> str:
    if stamped:
        return (
            f"the trade database {where} has an older schema; a command that writes to it "
            "(run) upgrades it, this one only reads"
        )
    return f"{where} is not a kinetic-rules trade database (it holds no trades table)"


def _reason(error: BaseException) -> str:
    original = getattr(error, "orig", None) or error
    return str(original).strip().splitlines()[0] if str(original).strip() else type(error).__name__


def _get(session: Session, trade_id: int) -> TradeRow:
    row = session.get(TradeRow, trade_id, options=[selectinload(TradeRow.fills)])
    if row is None:
        raise StoreError(f"no trade with id {trade_id} in the trade database")
    return row
