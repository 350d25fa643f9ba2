"""kubectl's JSONPath templates (`-o jsonpath=...`), pure: `{.metadata.name}`, `{.items[*].spec.symbol}`,
`{.status.conditions[?(@.type=="Ready")].status}`, `{range .items[*]}{.metadata.name}{"\\n"}{end}`,
`{..image}`, `{.a['b.c']}`, `[0]`, `[-1]`, `[1:3]`, `[*]`, `.*`.

As in `kubectl get`, a missing key prints nothing (not an error); several results of one expression are
joined by a space; maps and lists print as JSON."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

Value = Any


class JSONPathError(ValueError):
    """A template that does not parse."""


# Path segments ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Field:
    names: tuple[str, ...]


@dataclass(frozen=True)
class Wildcard:
    pass


@dataclass(frozen=True)
class Index:
    indexes: tuple[int, ...]


@dataclass(frozen=True)
class Slice:
    start: int | None
    stop: int | None
    step: int | None


@dataclass(frozen=True)
class Descend:
    """`..name` (or `..*`): every value of that key anywhere below."""

    name: str | None


@dataclass(frozen=True)
class Filter:
    left: Path | Value
    op: str | None
    right: Path | Value


@dataclass(frozen=True)
class Path:
    segments: tuple[Field | Wildcard | Index | Slice | Descend | Filter, ...]
    root: bool = False
    """`$...`: from the document root even inside a range."""


# Template nodes --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Text:
    text: str


@dataclass(frozen=True)
class Range:
    path: Path
    body: tuple[Node, ...]


Node = Text | Path | Range

_NAME = re.compile(r"[^.\[\]\s()=!<>,'\"]+")
_OPS = ("==", "!=", "<=", ">=", "<", ">")


def parse(template: str) -> tuple[Node, ...]:
    """The nodes of a template; JSONPathError when it does not parse."""
    stack: list[tuple[Path | None, list[Node]]] = [(None, [])]
    position = 0
    while position < len(template):
        start = template.find("{", position)
        if start < 0:
            stack[-1][1].append(Text(template[position:]))
            break
        if start > position:
            stack[-1][1].append(Text(template[position:start]))
        end = _closing(template, start)
        action = template[start + 1:end].strip()
        position = end + 1
        if action == "end":
            if len(stack) == 1:
                raise JSONPathError(f"{{end}} at character {start} closes no {{range}}")
            path, body = stack.pop()
            assert path is not None
            stack[-1][1].append(Range(path, tuple(body)))
        elif action.startswith("range "):
            stack.append((_path(action[6:].strip()), []))
        elif action.startswith('"'):
            stack[-1][1].append(Text(_string(action)))
        elif action:
            stack[-1][1].append(_path(action))
    if len(stack) > 1:
        raise JSONPathError("a {range} is not closed by {end}")
    return tuple(stack[0][1])


def _unquoted(text: str, start: int = 0) -> Iterator[tuple[int, str]]:
    """(index, character) of the characters of `text` from `start` that are not inside quotes."""
    quote, escaped = "", False
    for index in range(start, len(text)):
        char = text[index]
        if quote:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == quote:
                quote = ""
        elif char in "'\"":
            quote = char
        else:
            yield index, char


def _closing(template: str, start: int) -> int:
    """The index of the `}` closing the action at `start` (quotes may hold braces)."""
    found = next((index for index, char in _unquoted(template, start + 1) if char == "}"), None)
    if found is None:
        raise JSONPathError(f"unclosed action at character {start}: {template[start:start + 30]!r}")
    return found


def _string(literal: str) -> str:
    try:
        value = json.loads(literal, strict=False)
    except ValueError:
        raise JSONPathError(f"bad string literal {literal}") from None
    if not isinstance(value, str):
        raise JSONPathError(f"bad string literal {literal}")
    return value


def _path(text: str) -> Path:
    """A path: `$`/`@`/`.`-led segments."""
    position, root = 0, False
    if text.startswith("$"):
        position, root = 1, True
    elif text.startswith("@"):
        position = 1
    segments: list[Field | Wildcard | Index | Slice | Descend | Filter] = []
    while position < len(text):
        if text.startswith("..", position):
            match = _NAME.match(text, position + 2)
            if not match:
                raise JSONPathError(f"a name must follow '..' in {text!r}")
            name = match.group()
            segments.append(Descend(None if name == "*" else name))
            position = match.end()
        elif text[position] == ".":
            match = _NAME.match(text, position + 1)
            if not match:
                if position + 1 == len(text) and not segments:  # `{.}`: the current object
                    position += 1
                    continue
                raise JSONPathError(f"a name must follow '.' at character {position} of {text!r}")
            segments.append(Wildcard() if match.group() == "*" else Field((match.group(),)))
            position = match.end()
        elif text[position] == "[":
            end = _bracket_end(text, position)
            segments.append(_subscript(text[position + 1:end].strip(), text))
            position = end + 1
        else:
            raise JSONPathError(f"unexpected {text[position]!r} at character {position} of {text!r}")
    return Path(tuple(segments), root)


def _bracket_end(text: str, start: int) -> int:
    depth = 0
    for index, char in _unquoted(text, start):
        depth += {"[": 1, "]": -1}.get(char, 0)
        if depth == 0:
            return index
    raise JSONPathError(f"unclosed '[' in {text!r}")


def _subscript(inner: str, text: str) -> Field | Wildcard | Index | Slice | Filter:
    if inner == "*":
        return Wildcard()
    if inner.startswith("?(") and inner.endswith(")"):
        return _filter(inner[2:-1].strip())
    if inner[:1] in "'\"":
        names = [part.strip() for part in _split(inner)]
        if not all(len(n) >= 2 and n[0] == n[-1] and n[0] in "'\"" for n in names):
            raise JSONPathError(f"bad quoted name in [{inner}] of {text!r}")
        return Field(tuple(n[1:-1] for n in names))
    try:
        if ":" in inner:
            parts = [p.strip() for p in inner.split(":")]
            if len(parts) > 3:
                raise ValueError
            numbers = [int(p) if p else None for p in parts] + [None] * (3 - len(parts))
            return Slice(numbers[0], numbers[1], numbers[2])
        return Index(tuple(int(part) for part in inner.split(",")))
    except ValueError:
        raise JSONPathError(f"bad subscript [{inner}] in {text!r}") from None


def _split(inner: str) -> list[str]:
    """Comma-separated parts, commas inside quotes kept."""
    cuts = [index for index, char in _unquoted(inner) if char == ","]
    return [inner[a + 1:b] for a, b in zip([-1, *cuts], [*cuts, len(inner)], strict=True)]


def _filter(expression: str) -> Filter:
    for op in _OPS:
        index = _outside_quotes(expression, op)
        if index >= 0:
            return Filter(_operand(expression[:index].strip()), op, _operand(expression[index + len(op):].strip()))
    return Filter(_operand(expression), None, None)


def _outside_quotes(expression: str, op: str) -> int:
    return next((index for index, _ in _unquoted(expression) if expression.startswith(op, index)), -1)


def _operand(text: str) -> Path | Value:
    if text.startswith(("@", "$")):
        return _path(text)
    if text[:1] in "'\"" and text[-1:] == text[:1] and len(text) >= 2:
        return text[1:-1]
    if text in ("true", "false"):
        return text == "true"
    try:
        return int(text)
    except ValueError:
        pass
    try:
        return float(text)
    except ValueError:
        raise JSONPathError(f"bad filter operand {text!r}") from None


# Evaluation ------------------------------------------------------------------------------------------------


def evaluate(path: Path, current: Value, root: Value) -> list[Value]:
    values = [root if path.root else current]
    for segment in path.segments:
        values = [result for value in values for result in _apply(segment, value, root)]
    return values


def _apply(segment: Field | Wildcard | Index | Slice | Descend | Filter, value: Value, root: Value) -> list[Value]:
    if isinstance(segment, Field):
        return [value[name] for name in segment.names if isinstance(value, dict) and name in value]
    if isinstance(segment, Wildcard):
        return list(value.values()) if isinstance(value, dict) else list(value) if isinstance(value, list) else []
    if isinstance(segment, Index):
        if not isinstance(value, list):
            return []
        return [value[i] for i in segment.indexes if -len(value) <= i < len(value)]
    if isinstance(segment, Slice):
        return value[segment.start:segment.stop:segment.step] if isinstance(value, list) else []
    if isinstance(segment, Descend):
        below = _walk(value)
        if segment.name is None:
            return below[1:]
        return [node[segment.name] for node in below if isinstance(node, dict) and segment.name in node]
    items = value if isinstance(value, list) else []
    return [item for item in items if _holds(segment, item, root)]


def _walk(value: Value) -> list[Value]:
    """A value and every value below it, depth first."""
    out = [value]
    children = value.values() if isinstance(value, dict) else value if isinstance(value, list) else []
    for child in children:
        out += _walk(child)
    return out


_COMPARE: dict[str, Callable[[Any, Any], bool]] = {
    "==": lambda a, b: a == b, "!=": lambda a, b: a != b, "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b, ">": lambda a, b: a > b, ">=": lambda a, b: a >= b,
}


def _holds(condition: Filter, item: Value, root: Value) -> bool:
    def side(operand: Path | Value) -> list[Value]:
        return evaluate(operand, item, root) if isinstance(operand, Path) else [operand]

    left = side(condition.left)
    if condition.op is None:
        return bool(left)
    right = side(condition.right)
    try:
        return any(_COMPARE[condition.op](a, b) for a in left for b in right)
    except TypeError:  # comparing a string with a number: not a match
        return False


def text_of(value: Value) -> str:
    """How kubectl prints one result."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, dict | list):
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    return "" if value is None else str(value)


def execute(template: str | tuple[Node, ...], data: Value) -> str:
    """The text of a template over data."""
    nodes = parse(template) if isinstance(template, str) else template
    return _run(nodes, data, data)


def _run(nodes: tuple[Node, ...], current: Value, root: Value) -> str:
    out = []
    for node in nodes:
        if isinstance(node, Text):
            out.append(node.text)
        elif isinstance(node, Path):
            out.append(" ".join(text_of(v) for v in evaluate(node, current, root)))
        else:
            found = evaluate(node.path, current, root)
            items = found[0] if len(found) == 1 and isinstance(found[0], list) else found
            out += [_run(node.body, item, root) for item in items]
    return "".join(out)
