"""AST → text, with the fewest parentheses that parse back to the same tree.

Used for explain output, plan dumps, error messages — and for the round-trip property
`parse(to_text(tree)) == tree` that keeps grammar and printer honest with each other.
"""

from __future__ import annotations

from kinetic_rules.lang import ast

# Binding strength; larger binds tighter. Mirrors grammar.lark.
_IF, _OR, _AND, _NOT, _COMPARE, _SUM, _PRODUCT, _UNARY, _POSTFIX = range(1, 10)


def to_text(node: ast.Node) -> str:
    return _print(node)[0]


def _number(value: float) -> str:
    if value.is_integer() and abs(value) < 1e16:
        return str(int(value))
    return repr(value)


def _wrap(text_prec: tuple[str, int], minimum: int) -> str:
    text, prec = text_prec
    return f"({text})" if prec < minimum else text


def _print(node: ast.Node) -> tuple[str, int]:
    match node:
        case ast.Number(value=v):
            return (_number(v), _POSTFIX) if v >= 0 else (f"-{_number(-v)}", _UNARY)
        case ast.Percent(written=w):
            return f"{_number(w)}%", _POSTFIX
        case ast.Duration():
            return node.text, _POSTFIX
        case ast.Bool(value=v):
            return ("true" if v else "false"), _POSTFIX
        case ast.String(value=v):
            quote = "'" if '"' in v else '"'
            return f"{quote}{v}{quote}", _POSTFIX
        case ast.Name(id=i):
            return i, _POSTFIX
        case ast.Param(id=i):
            return f"${i}", _POSTFIX
        case ast.ListLit(items=items):
            return "[" + ", ".join(to_text(i) for i in items) + "]", _POSTFIX
        case ast.Call(func=f, args=args, kwargs=kwargs):
            parts = [to_text(a) for a in args] + [f"{k}={to_text(v)}" for k, v in kwargs]
            return f"{f}({', '.join(parts)})", _POSTFIX
        case ast.Predict(model=model, output="accuracy", window=window):
            return f"model_accuracy({model}, {window})", _POSTFIX
        case ast.Predict(model=model):
            return f"predict({model})", _POSTFIX
        case ast.History(operand=o, offset=off):
            return f"{_wrap(_print(o), _POSTFIX)}[{_offset(off)}]", _POSTFIX
        case ast.Context(operand=o, timeframe=tf, pair=pair):
            # The parser merges `x@1h` and `[BTC/USDT]` into one Context when a slot is
            # free, so a tree straight from the parser always prints back to itself.
            text = _wrap(_print(o), _POSTFIX)
            text += f"@{tf}" if tf is not None else ""
            text += f"[{pair}]" if pair is not None else ""
            return text, _POSTFIX
        case ast.Unary(op="not", operand=o):
            return f"not {_wrap(_print(o), _NOT)}", _NOT
        case ast.Unary(op=op, operand=o):
            return f"{op}{_wrap(_print(o), _UNARY)}", _UNARY
        case ast.Binary(op="or", left=left, right=right):
            return f"{_wrap(_print(left), _OR)} or {_wrap(_print(right), _AND)}", _OR
        case ast.Binary(op="and", left=left, right=right):
            return f"{_wrap(_print(left), _AND)} and {_wrap(_print(right), _NOT)}", _AND
        case ast.Binary(op=op, left=left, right=right):
            prec = _SUM if op in "+-" else _PRODUCT
            return f"{_wrap(_print(left), prec)} {op} {_wrap(_print(right), prec + 1)}", prec
        case ast.Compare(first=first, rest=rest):
            parts = [_wrap(_print(first), _SUM)]
            parts += [f"{op} {_wrap(_print(operand), _SUM)}" for op, operand in rest]
            return " ".join(parts), _COMPARE
        case ast.IfElse(condition=c, then=t, otherwise=o):
            return f"if {to_text(c)} then {to_text(t)} else {to_text(o)}", _IF
    raise TypeError(f"cannot print {type(node).__name__}")


def _offset(node: ast.Node) -> str:
    if isinstance(node, ast.Number):
        return _number(node.value) if node.value >= 0 else f"-{_number(-node.value)}"
    return to_text(node)
