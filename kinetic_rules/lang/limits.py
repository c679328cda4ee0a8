"""Limits on what the checker passes on: expanded trees and constant arguments.

Named definitions are written out where they are used, so a chain of definitions each
using the previous one makes one deep tree, and a definition used twice in the next
doubles it at every step. Every later stage (plan, evaluators, explain, replay) walks
these trees; the limits here keep them within what those walks and Python's stack
handle, far above any readable strategy.
"""

from __future__ import annotations

import math

from kinetic_rules.functions import Arg, ArgKind
from kinetic_rules.lang import ast
from kinetic_rules.timeframes import format_duration, timeframe_seconds

MAX_EXPANDED_DEPTH = 150  # levels of one expression with its definitions written out
MAX_EXPANDED_SIZE = 50_000  # parts (numbers, names, calls, operators) of one expression
TOO_DEEP = (
    f"with its named definitions written out, this nests deeper than {MAX_EXPANDED_DEPTH} levels"
)
SPLIT_HINT = (
    "a definition is written out in full wherever it is used; shorten the chain of "
    "definitions that use one another, or use a function such as mean or sum"
)


class TreeMeter:
    """Depth and size of resolved trees, remembered across the trees of one strategy."""

    def __init__(self) -> None:
        self._known: dict[int, tuple[ast.Node, int, int]] = {}  # id → (node, depth, size)

    def problem(self, root: ast.Node) -> tuple[str, str] | None:
        """(code, message) when the tree is beyond a limit; None when it is within."""
        depth, size = self.measure(root)
        if depth > MAX_EXPANDED_DEPTH:
            return "too-deep", f"{TOO_DEEP} ({depth})"
        if size > MAX_EXPANDED_SIZE:
            message = (
                f"with its named definitions written out, this has more than "
                f"{MAX_EXPANDED_SIZE} parts"
            )
            return "too-large", message
        return None

    def measure(self, root: ast.Node) -> tuple[int, int]:
        """(depth, size) of a tree whose shared subtrees count every time they occur.

        Iterative, and each distinct node is measured once: the tree of a definition used
        twice in the next may be exponentially large, its shared nodes are not. The node
        is kept with its numbers so that its id is not reused while remembered.
        """
        known = self._known
        stack: list[tuple[ast.Node, bool]] = [(root, False)]
        while stack:
            node, children_done = stack.pop()
            if id(node) in known:
                continue
            children = list(node.children())
            if children_done:
                depth = 1 + max((known[id(c)][1] for c in children), default=0)
                size = 1 + sum(known[id(c)][2] for c in children)
                known[id(node)] = (node, depth, min(size, MAX_EXPANDED_SIZE + 1))
            else:
                stack.append((node, True))
                stack.extend((c, False) for c in children if id(c) not in known)
        _, depth, size = known[id(root)]
        return depth, size


def list_values(node: ast.ListLit) -> tuple[float, ...]:
    return tuple(item.value if isinstance(item, ast.Number) else math.nan for item in node.items)


def window_hint(spec: Arg, tf: str) -> str | None:
    """For a count of candles that is too long, what that maximum is in time."""
    if spec.kind not in (ArgKind.INT, ArgKind.WINDOW) or spec.maximum is None:
        return None
    longest = format_duration(int(spec.maximum) * timeframe_seconds(tf))
    return f"{int(spec.maximum)} candles of {tf} is {longest}"
