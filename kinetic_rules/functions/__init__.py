"""Every function a strategy can call. Importing this package fills REGISTRY."""

from kinetic_rules.functions import (  # noqa: F401  (imported to register their functions)
    logic,
    math,
    moving,
    oscillators,
    profile,
    rolling,
    trend,
    volatility,
    volume,
)
from kinetic_rules.functions.registry import MAX_CANDLES, REGISTRY, Arg, ArgKind, Function

__all__ = ["MAX_CANDLES", "REGISTRY", "Arg", "ArgKind", "Function"]
