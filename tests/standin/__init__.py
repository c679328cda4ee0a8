"""A local stand-in for the exchange's HTTP API, for tests that run the real ccxt client."""

from tests.standin.exchange import ExchangeStandin

__all__ = ["ExchangeStandin"]
