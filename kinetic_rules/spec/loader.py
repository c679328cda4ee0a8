"""Strategy file → validated `Strategy` model plus the position of every value in it.

YAML is composed into nodes (never constructed into arbitrary objects), converted to
plain data by hand so that duplicate keys, alias bombs and absurd nesting become
errors instead of surprises, and every value's span is recorded by its path. Scalars
follow YAML 1.2's core schema: `yes`, `no`, `on` and `off` stay words.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError
from yaml.events import AliasEvent, CollectionEndEvent, CollectionStartEvent
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from kinetic_rules.errors import Diagnostic, Snippet, Source, Span, StrategyError
from kinetic_rules.files import read_regular
from kinetic_rules.spec.models import Strategy

PathKey = tuple[str | int, ...]
MAX_NODES = 100_000  # after alias expansion; a strategy file has a few hundred
MAX_DEPTH = 64  # levels of nested mappings and lists, aliases expanded; files use about 6
MAX_BYTES = 2_000_000

_INT = re.compile(r"^[-+]?[0-9]+$")
_FLOAT = re.compile(r"^[-+]?([0-9]+\.[0-9]*|\.[0-9]+|[0-9]+)([eE][-+]?[0-9]+)?$")
_NULL = {"", "~", "null", "Null", "NULL"}


@dataclass
class Positions:
    """Where each value (and each mapping key) of the file was written."""

    source: Source
    values: dict[PathKey, Span] = field(default_factory=dict)
    keys: dict[PathKey, Span] = field(default_factory=dict)
    snippets: dict[PathKey, Snippet] = field(default_factory=dict)

    def span(self, path: PathKey) -> Span:
        """The span of the value at `path`, or of its nearest written ancestor."""
        for cut in range(len(path), -1, -1):
            found = self.values.get(path[:cut])
            if found is not None:
                return found
        return Span(self.source, 0, 0)

    def snippet(self, path: PathKey, text: str) -> Snippet:
        """The written text of an expression, or the text itself when it was computed."""
        found = self.snippets.get(path)
        if found is not None and found.text == text:
            return found
        return Snippet(text, self.source, self.span(path).start)


@dataclass
class LoadedStrategy:
    strategy: Strategy
    positions: Positions

    @property
    def source(self) -> Source:
        return self.positions.source


def load_file(path: str | Path) -> LoadedStrategy:
    file = Path(path)
    try:
        raw = read_regular(file, MAX_BYTES)  # a FIFO or a device is refused, never read
    except OSError as problem:
        reason = problem.strerror or str(problem)
        raise StrategyError([_diag(Span(Source(str(path), ""), 0, 0), "file", reason)]) from None
    return load_bytes(raw, str(path))


def load_bytes(raw: bytes, path: str) -> LoadedStrategy:
    if len(raw) > MAX_BYTES:
        empty = Source(path, "")
        raise StrategyError([_diag(Span(empty, 0, 0), "file", "file is larger than 2 MB")])
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as problem:
        source = Source(path, raw.decode("utf-8", errors="replace"))
        message = f"not UTF-8 text (byte {problem.start}); is this a YAML file?"
        raise StrategyError(
            [_diag(Span(source, problem.start, problem.start + 1), "file", message)]
        ) from None
    return load_text(text, path)


def load_text(text: str, path: str = "<strategy>") -> LoadedStrategy:
    source = Source(path, text)
    if "\x00" in text:
        at = text.index("\x00")
        raise StrategyError([_diag(Span(source, at, at + 1), "file", "binary data in a YAML file")])
    positions = Positions(source)
    node = _compose(text, source)
    data = _Converter(positions).convert(node, ())
    if not isinstance(data, dict):
        span = positions.span(())
        raise StrategyError([_diag(span, "structure", "a strategy file is a mapping of sections")])
    try:
        strategy = Strategy.model_validate(data)
    except ValidationError as invalid:
        raise StrategyError(_pydantic_diagnostics(invalid, data, positions)) from None
    return LoadedStrategy(strategy, positions)


def _diag(span: Span, code: str, message: str, hint: str | None = None) -> Diagnostic:
    return Diagnostic("error", code, message, span, hint)


def _screen(text: str, source: Source) -> None:
    """Refuse, from the event stream and before any node is built, what could make the
    composed document unbounded: an alias inside the value it names (a cycle), nesting
    deeper than MAX_DEPTH, more than MAX_NODES values.

    libyaml's parser, when present, screens a good file quickly; any problem is found
    again with the pure-Python parser, whose positions the rest of the loader uses."""
    fast = getattr(yaml, "CSafeLoader", None)
    if fast is not None:
        try:
            _screen_events(text, source, fast)
            return
        except (StrategyError, yaml.YAMLError):
            pass
    _screen_events(text, source, yaml.SafeLoader)


def _screen_events(text: str, source: Source, loader: Any) -> None:
    open_anchors: list[str | None] = []
    for count, event in enumerate(yaml.parse(text, Loader=loader)):
        start = event.start_mark.index if event.start_mark else 0
        end = event.end_mark.index if event.end_mark else start
        span = Span(source, start, max(end, start + 1))
        if count > MAX_NODES:
            raise StrategyError([_diag(span, "yaml", "too many values in one file")])
        if isinstance(event, CollectionStartEvent):
            open_anchors.append(event.anchor)
            if len(open_anchors) > MAX_DEPTH:
                message = f"nested more than {MAX_DEPTH} levels deep"
                raise StrategyError([_diag(span, "yaml", message)])
        elif isinstance(event, CollectionEndEvent):
            open_anchors.pop()
        elif isinstance(event, AliasEvent) and event.anchor in open_anchors:
            message = f"the alias *{event.anchor} refers to the value that contains it"
            hint = "an alias may only repeat a value that is already complete"
            raise StrategyError([_diag(span, "yaml", message, hint)])


_TAB_INDENT = re.compile(r"^[ ]*\t", re.MULTILINE)


def _tab_indents(text: str, source: Source) -> list[Diagnostic]:
    """Lines indented with a tab: YAML forbids them, and its own message does not say so."""
    return [
        _diag(
            Span(source, found.end() - 1, found.end()),
            "yaml",
            "use spaces to indent, not tabs",
            "YAML reads indentation from spaces only; replace the tab with spaces",
        )
        for found in list(_TAB_INDENT.finditer(text))[:20]
    ]


def _compose(text: str, source: Source) -> Node:
    try:
        _screen(text, source)
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as problem:
        mark = problem.problem_mark or problem.context_mark
        offset = mark.index if mark is not None else 0
        tabs = _tab_indents(text, source)
        if tabs:
            raise StrategyError(tabs) from None
        message = (problem.problem or problem.context or "invalid YAML").strip()
        raise StrategyError([_diag(Span(source, offset, offset + 1), "yaml", message)]) from None
    except yaml.YAMLError as problem:
        raise StrategyError([_diag(Span(source, 0, 1), "yaml", str(problem))]) from None
    except RecursionError:
        message = "YAML nested too deeply"
        raise StrategyError([_diag(Span(source, 0, 1), "yaml", message)]) from None
    if node is None:
        hint = "start from strategies/kinetic_empire.yaml"
        raise StrategyError([_diag(Span(source, 0, 0), "structure", "the file is empty", hint)])
    return node


class _Converter:
    """YAML nodes → plain data, recording positions, refusing what a strategy never needs."""

    def __init__(self, positions: Positions) -> None:
        self.positions = positions
        self.count = 0

    def convert(self, root: Node, root_path: PathKey) -> Any:
        # Iterative, so deep nesting cannot exhaust the Python stack.
        result: dict[str, Any] = {}
        stack: list[tuple[Node, PathKey, Any, str | int]] = [(root, root_path, result, "root")]
        while stack:
            node, path, parent, slot = stack.pop()
            self.count += 1
            if self.count > MAX_NODES:
                raise StrategyError(
                    [_diag(self._span(node), "yaml", "too many values (an alias bomb?)")]
                )
            if len(path) - len(root_path) > MAX_DEPTH:
                message = f"nested more than {MAX_DEPTH} levels deep once aliases are expanded"
                raise StrategyError([_diag(self._span(node), "yaml", message)])
            self.positions.values[path] = self._span(node)
            if node.tag not in _ALLOWED_TAGS:
                message = f"YAML tag {node.tag} is not allowed in a strategy file"
                raise StrategyError([_diag(self._span(node), "yaml", message)])
            if isinstance(node, ScalarNode):
                parent[slot] = self._scalar(node, path)
            elif isinstance(node, SequenceNode):
                items: list[Any] = [None] * len(node.value)
                parent[slot] = items
                for index, child in enumerate(node.value):
                    stack.append((child, (*path, index), items, index))
            elif isinstance(node, MappingNode):
                mapping: dict[str, Any] = {}
                parent[slot] = mapping
                for key_node, value_node in node.value:
                    key = self._key(key_node)
                    if key in mapping or (*path, key) in self.positions.keys:
                        message = f"duplicate key '{key}'"
                        hint = "each key may appear once in a mapping"
                        raise StrategyError([_diag(self._span(key_node), "yaml", message, hint)])
                    self.positions.keys[(*path, key)] = self._span(key_node)
                    mapping[key] = None
                    stack.append((value_node, (*path, key), mapping, key))
        return result["root"]

    def _span(self, node: Node) -> Span:
        return Span(self.positions.source, node.start_mark.index, node.end_mark.index)

    def _key(self, node: Node) -> str:
        if not isinstance(node, ScalarNode):
            message = "mapping keys must be plain words"
            raise StrategyError([_diag(self._span(node), "yaml", message)])
        if node.tag == "tag:yaml.org,2002:merge":
            message = "YAML merge keys (<<) are not supported"
            hint = "use an anchor on the whole value instead, or repeat the keys"
            raise StrategyError([_diag(self._span(node), "yaml", message, hint)])
        return str(node.value)

    def _scalar(self, node: ScalarNode, path: PathKey) -> Any:
        text = node.value
        if node.style is None:  # plain: resolve by YAML 1.2 core rules
            if text in _NULL:
                return None
            if text in ("true", "True", "TRUE"):
                return True
            if text in ("false", "False", "FALSE"):
                return False
            if _INT.match(text):
                return int(text)
            if _FLOAT.match(text):
                return float(text)
        self.positions.snippets[path] = self._snippet(node)
        return text

    def _snippet(self, node: ScalarNode) -> Snippet:
        source = self.positions.source
        start, end = node.start_mark.index, node.end_mark.index
        raw = source.text[start:end]
        value = node.value
        if raw == value:
            return Snippet(value, source, start)
        if node.style in ("'", '"') and raw[1:-1] == value:
            return Snippet(value, source, start + 1)
        return Snippet(value, source, start, _align(value, raw, start))


def _align(value: str, raw: str, base: int) -> tuple[int, ...]:
    """File offset of each character of a folded or escaped scalar, matched greedily."""
    offsets: list[int] = []
    cursor = 0
    for char in value:
        found = raw.find(char, cursor) if not char.isspace() else -1
        if char.isspace():
            while cursor < len(raw) and not raw[cursor].isspace():
                cursor += 1
            found = cursor if cursor < len(raw) else len(raw) - 1
            while cursor < len(raw) and raw[cursor].isspace():
                cursor += 1
        elif found < 0:
            found = min(cursor, len(raw) - 1)
        else:
            cursor = found + 1
        offsets.append(base + max(0, found))
    return tuple(offsets)


_ALLOWED_TAGS = {
    "tag:yaml.org,2002:str",
    "tag:yaml.org,2002:int",
    "tag:yaml.org,2002:float",
    "tag:yaml.org,2002:bool",
    "tag:yaml.org,2002:null",
    "tag:yaml.org,2002:map",
    "tag:yaml.org,2002:seq",
    "tag:yaml.org,2002:merge",
    "tag:yaml.org,2002:timestamp",
}


def _pydantic_diagnostics(
    invalid: ValidationError, data: dict[str, Any], positions: Positions
) -> list[Diagnostic]:
    found: list[Diagnostic] = []
    for error in invalid.errors(include_url=False):
        loc: PathKey = tuple(p for p in error["loc"] if isinstance(p, str | int))
        loc = tuple(p for p in loc if not (isinstance(p, str) and p.startswith("function-")))
        loc = _strip_union_tags(loc, data)
        kind = error["type"]
        if kind == "extra_forbidden":
            key = str(loc[-1])
            allowed = _allowed_keys(loc[:-1])
            near = difflib.get_close_matches(key, allowed, n=1, cutoff=0.6)
            hint = f"did you mean '{near[0]}'?" if near else f"allowed here: {', '.join(allowed)}"
            span = positions.keys.get(loc, positions.span(loc))
            found.append(_diag(span, "unknown-key", f"unknown key '{key}'", hint))
        elif kind == "missing":
            where = ".".join(str(p) for p in loc[:-1]) or "the file"
            span = positions.keys.get(loc[:-1], positions.span(loc[:-1]))
            message = f"'{loc[-1]}' is required in {where}"
            found.append(_diag(span, "missing-key", message))
        else:
            message = str(error["msg"]).removeprefix("Value error, ")
            found.append(_diag(positions.span(loc), "invalid", message))
    return found or [_diag(positions.span(()), "invalid", str(invalid))]


def _strip_union_tags(loc: PathKey, data: Any) -> PathKey:
    """Drop pydantic's union-branch names from a location, keeping only real keys."""
    kept: list[str | int] = []
    node = data
    for part in loc:
        in_dict = isinstance(node, dict) and part in node
        in_list = isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node)
        if in_dict or in_list:
            kept.append(part)
            node = node[part]
        elif not isinstance(node, dict | list) or isinstance(part, int):
            continue
        else:
            kept.append(part)  # a missing or extra key: keep it, it is the subject
            node = None
    return tuple(kept)


def _allowed_keys(path: PathKey) -> list[str]:
    model: Any = Strategy
    for part in path:
        if isinstance(part, int) or model is None:
            model = _inner_model(model, None)
            continue
        fields = getattr(model, "model_fields", {})
        info = fields.get(part)
        if info is None:  # a user-named entry of a dict section
            model = _inner_model(model, None)
            continue
        model = _inner_model(info.annotation, None)
    fields = getattr(model, "model_fields", {}) if model is not None else {}
    return sorted(info.alias or name for name, info in fields.items())


def _inner_model(annotation: Any, _: None) -> Any:
    """The pydantic model inside Optional[...], dict[..., M] or list[M], if any."""
    from typing import get_args

    if isinstance(annotation, type) and hasattr(annotation, "model_fields"):
        return annotation
    for arg in reversed(get_args(annotation)):
        inner = _inner_model(arg, None)
        if inner is not None:
            return inner
    return None
