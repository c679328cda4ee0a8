"""The one place that decides what a secret looks like, and hides it.

Everything kinetic-rules writes where a person or a file could keep it — the terminal,
log records, crash reports, report files, the trade database — passes through `mask`.
It hides:

- the credentials of any URL (`scheme://user:password@host`), even a password holding
  unencoded `@`, `:` or `/`;
- the values of secret environment variables: `KINETIC_API_KEY`, `KINETIC_API_SECRET`,
  `KINETIC_TELEGRAM_TOKEN`, any `KINETIC_*` variable whose name says KEY, SECRET, TOKEN or
  PASSWORD, and the password of the `KINETIC_RULES_DB` URL;
- secrets registered at run time (`register`), e.g. the password of a `--db` URL;
- shapes that are secrets wherever they appear: Telegram bot tokens, bearer tokens,
  `key=value` pairs whose key names a key, secret, token, password or signature.

This module sits below every stage (it imports nothing of the project) so each can use it.
"""

from __future__ import annotations

import logging
import os
import re
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, TextIO
from urllib.parse import quote, unquote

HIDDEN = "***"
MIN_SECRET = 4  # shorter values would garble ordinary text, and are no real secret anyway
_SECRET_NAMES = ("KEY", "SECRET", "TOKEN", "PASSWORD", "PASSWD", "PASS")
_URL_ENVS = ("KINETIC_RULES_DB",)

# scheme://userinfo@ — userinfo runs to the last '@' of the URL, so a password may hold '@'.
_URL = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.\-]*://)(?P<rest>[^\s'\"<>`]+)")
_TELEGRAM = re.compile(r"(?<!\d)\d{5,}:[A-Za-z0-9_-]{30,}")
_BEARER = re.compile(r"(?i)\b(bearer)(\s+)[A-Za-z0-9._~+/=\-]{8,}")
_ASSIGNED = re.compile(
    r"(?i)\b([A-Za-z0-9_\-]*(?:key|secret|token|passw(?:or)?d|signature)[A-Za-z0-9_\-]*)"
    r"(=)(?!\*\*\*)([^\s&'\",;]{4,})"
)

_registered: set[str] = set()
_lock = threading.Lock()


def register(secret: str | None) -> None:
    """Hide `secret` (and its URL-encoded form) in everything masked from now on."""
    if not secret or len(secret) < MIN_SECRET:
        return
    with _lock:
        _registered.update({secret, quote(secret, safe="")})
    batch = _batch.get()
    if batch is not None:  # a batch under way hides it from now on too
        _batch.set(_Batch())


def register_url(url: str | None) -> None:
    """Hide the password of a URL wherever it appears, also outside the URL itself."""
    password = _url_password(url or "")
    if password:
        register(password)
        register(unquote(password))


def environment_secrets(environ: dict[str, str] | None = None) -> set[str]:
    """The secret values held by KINETIC_* environment variables right now."""
    env = os.environ if environ is None else environ
    found: set[str] = set()
    for name, value in env.items():
        upper = name.upper()
        if not upper.startswith("KINETIC_") or not value:
            continue
        if upper in _URL_ENVS or "://" in value:
            password = _url_password(value)
            if password:
                found.update({password, unquote(password)})
            continue
        if any(word in upper.removeprefix("KINETIC_") for word in _SECRET_NAMES):
            found.add(value)
    return {s for s in found if len(s) >= MIN_SECRET} | {
        quote(s, safe="") for s in found if len(s) >= MIN_SECRET
    }


def mask(text: str, extra: Iterable[str | None] = ()) -> str:
    """`text` with every secret it holds replaced by ***."""
    if not text:
        return text
    more = [s for s in extra if s and len(s) >= MIN_SECRET]
    batch = _batch.get()
    if batch is not None and not more:
        return batch.mask(text)
    return _mask_with(text, _known_secrets(more))


def _known_secrets(extra: Iterable[str] = ()) -> list[str]:
    """Every secret to hide right now, longest first (so a secret holding another one is
    hidden whole)."""
    with _lock:
        known = set(_registered)
    known |= environment_secrets()
    known |= set(extra)
    return sorted(known, key=len, reverse=True)


def _mask_with(text: str, known: list[str]) -> str:
    """Each pattern runs only on text holding the characters it needs: most values (a pair
    name, a number, an exit reason) hold none of them and are returned as they are."""
    if "://" in text:
        text = _URL.sub(_mask_url, text)
    for secret in known:
        if secret in text:
            text = text.replace(secret, HIDDEN)
    if ":" in text:
        text = _TELEGRAM.sub(HIDDEN, text)
    if "bearer" in text.lower():
        text = _BEARER.sub(lambda m: f"{m.group(1)}{m.group(2)}{HIDDEN}", text)
    if "=" in text:
        text = _ASSIGNED.sub(lambda m: f"{m.group(1)}{m.group(2)}{HIDDEN}", text)
    return text


class _Batch:
    """The secrets read once, and each distinct short text masked once."""

    CACHED = 50_000  # distinct texts remembered; a longer batch masks the rest anew
    SHORT = 512  # longer texts are masked each time rather than remembered

    def __init__(self) -> None:
        self.known = _known_secrets()
        self.seen: dict[str, str] = {}

    def mask(self, text: str) -> str:
        hidden = self.seen.get(text)
        if hidden is None:
            hidden = _mask_with(text, self.known)
            if len(text) <= self.SHORT and len(self.seen) < self.CACHED:
                self.seen[text] = hidden
        return hidden


_batch: ContextVar[_Batch | None] = ContextVar("kinetic_rules_mask_batch", default=None)


@contextmanager
def masking_batch() -> Iterator[None]:
    """Mask many values quickly: inside the block, `mask` reads the environment's secrets
    once (not once per call) and remembers each short text it has masked. For writing a
    report value by value; the block should not outlive a change of the environment (a
    secret `register`ed inside it ends the batch's snapshot)."""
    if _batch.get() is not None:  # already inside one: keep its snapshot
        yield
        return
    token = _batch.set(_Batch())
    try:
        yield
    finally:
        _batch.reset(token)


def mask_argv(argv: Iterable[str]) -> str:
    """A command line as it may be shown or saved: each argument masked on its own, so a
    URL with spaces in its password is still one URL."""
    return " ".join(_mask_argument(arg) for arg in argv)


def _mask_argument(arg: str) -> str:
    flag, equals, value = arg.partition("=")
    if equals and flag.startswith("-") and "://" in value:
        return f"{flag}={mask(_mask_whole_url(value))}"
    return mask(_mask_whole_url(arg))


def _mask_whole_url(arg: str) -> str:
    head, sep, rest = arg.partition("://")
    if not sep or not head.replace("+", "").replace("-", "").replace(".", "").isalnum():
        return arg
    return _hide_userinfo(head + sep, rest)


def _mask_url(match: re.Match[str]) -> str:
    return _hide_userinfo(match.group("scheme"), match.group("rest"))


def _hide_userinfo(scheme: str, rest: str) -> str:
    at = rest.rfind("@")
    if at < 0:
        return scheme + rest
    userinfo, host = rest[:at], rest[at + 1 :]
    user, colon, _password = userinfo.partition(":")
    if not colon and "/" in userinfo:  # an '@' in the path (https://host/@name): no secret
        return scheme + rest
    if colon and user:
        return f"{scheme}{user}:{HIDDEN}@{host}"
    return f"{scheme}{HIDDEN}@{host}"


def _url_password(url: str) -> str | None:
    _head, sep, rest = url.partition("://")
    if not sep:
        return None
    at = rest.rfind("@")
    if at < 0:
        return None
    _user, colon, password = rest[:at].partition(":")
    return password if colon and password else None


# --- logs ------------------------------------------------------------------------------------

_installed = False


def install_log_masking() -> None:
    """Mask every log record created from now on, whichever logger creates it.

    A filter on named loggers would miss their children (httpx, ccxt, telegram …), so the
    mask sits in the log record factory, where every record is made.
    """
    global _installed
    with _lock:
        if _installed:
            return
        _installed = True
    logging.setLogRecordFactory(_masking(logging.getLogRecordFactory()))


def _masking(make: Callable[..., logging.LogRecord]) -> Callable[..., logging.LogRecord]:
    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = make(*args, **kwargs)
        mask_record(record)
        return record

    return factory


def mask_record(record: logging.LogRecord) -> None:
    """Mask a log record's message, traceback and stack in place."""
    try:
        message = record.getMessage()
    except Exception:  # a malformed call: logging reports it later, as usual
        return
    hidden = mask(message)
    if hidden != message:
        record.msg, record.args = hidden, None
    if record.exc_info and record.exc_info[1] is not None:
        text = logging.Formatter().formatException(record.exc_info)
        shown = mask(text)
        if shown != text:
            record.exc_text = shown  # formatters use exc_text when it is set
    if record.stack_info:
        record.stack_info = mask(record.stack_info)


# --- the terminal ----------------------------------------------------------------------------


class MaskedStream:
    """A text stream that masks what is written, then passes it on to `target`.

    Deliberately not an io class: those flush on garbage collection, which would raise
    again on a closed pipe."""

    def __init__(self, target: TextIO) -> None:
        self.target = target

    def write(self, text: str) -> int:
        self.target.write(mask(text))
        return len(text)

    def flush(self) -> None:
        self.target.flush()

    def isatty(self) -> bool:
        return self.target.isatty()

    def fileno(self) -> int:
        return self.target.fileno()

    def writable(self) -> bool:
        return True

    def __getattr__(self, name: str) -> Any:
        return getattr(self.target, name)
