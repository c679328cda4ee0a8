"""Every function a strategy can call. Importing this package fills REGISTRY."""

from kinetic_rules.functions.registry import REGISTRY, Arg, ArgKind, Function

__all__ = ["REGISTRY", "Arg", "ArgKind", "Function"]
