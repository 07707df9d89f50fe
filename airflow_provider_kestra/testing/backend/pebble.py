"""The subset of Kestra's Pebble templating that the simulator evaluates.

Supported: ``{{ path }}`` where the path starts at ``inputs``, ``outputs``, ``execution``, ``flow``,
``labels``, ``trigger``, ``vars``, ``taskrun`` or ``task`` and continues with ``.name`` or ``['name']`` /
``[0]``; string, number and boolean literals; the filters ``upper``, ``lower``, ``trim``, ``toJson`` /
``json``, ``default(x)``, ``length`` and ``join(sep)``. Anything else (tags ``{% %}``, operators, function
calls, other filters) raises :class:`KestraPebbleError`, which the engine turns into a FAILED task with an
ERROR log naming the expression: the simulator never renders something it does not understand.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from typing import Any

ROOTS = ("inputs", "outputs", "execution", "flow", "labels", "trigger", "vars", "taskrun", "task", "parent")
_TOKEN = re.compile(
    r"\s*(?:(?P<str>'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\")|(?P<num>-?\d+(?:\.\d+)?)"
    r"|(?P<name>[A-Za-z_][A-Za-z0-9_-]*)|(?P<op>\|\||[.\[\](),|]))"
)
_TAG = re.compile(r"\{\{(.*?)\}\}|\{%(.*?)%\}|\{#.*?#\}", re.S)


_MISSING: Any = object()


class KestraPebbleError(ValueError):
    """An expression the simulator cannot (or must not) evaluate; the message names the expression."""


def to_pebble_string(value: Any) -> str:
    """Print a value the way Kestra's Pebble does: Java-style booleans, JSON for maps and lists."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, (dict, list)):
        return json.dumps(value, separators=(",", ":"))
    return str(value)


def render(template: str, context: Mapping[str, Any]) -> str:
    """Render one template string; raise :class:`KestraPebbleError` on anything outside the subset."""
    if "{" not in template:
        return template
    out: list[str] = []
    position = 0
    for match in _TAG.finditer(template):
        out.append(template[position : match.start()])
        position = match.end()
        if match.group(2) is not None:
            raise KestraPebbleError(
                f"Unsupported Pebble tag '{match.group(0)}' in '{template}': the Kestra simulator "
                "only evaluates {{ ... }} expressions"
            )
        if match.group(1) is None:
            continue
        out.append(to_pebble_string(_Expression(match.group(1), template).evaluate(context)))
    out.append(template[position:])
    return "".join(out)


def render_value(value: Any, context: Mapping[str, Any]) -> Any:
    """Render every string inside a value (lists and mappings recursively), like ``RunContext.render``."""
    if isinstance(value, str):
        return render(value, context)
    if isinstance(value, Mapping):
        return {render(str(k), context): render_value(v, context) for k, v in value.items()}
    if isinstance(value, list):
        return [render_value(v, context) for v in value]
    return value


class _Expression:
    """A tiny recursive-descent evaluator for ``primary (| filter(args))*``."""

    def __init__(self, source: str, template: str) -> None:
        self.source = source.strip()
        self.template = template
        self.tokens = self._tokenize(source)
        self.index = 0
        self.missing_path = ""

    def _fail(self, why: str) -> KestraPebbleError:
        return KestraPebbleError(
            f"Unsupported expression '{{{{ {self.source} }}}}' in '{self.template}': {why} "
            "(the Kestra simulator implements only a Pebble subset)"
        )

    def _tokenize(self, source: str) -> list[tuple[str, str]]:
        tokens: list[tuple[str, str]] = []
        position = 0
        stripped = source.rstrip()
        while position < len(stripped):
            match = _TOKEN.match(stripped, position)
            if not match or match.end() == position:
                raise self._fail(f"unexpected text {stripped[position:].strip()!r}")
            kind = match.lastgroup or ""
            tokens.append((kind, match.group(kind)))
            position = match.end()
        return tokens

    def _peek(self) -> tuple[str, str] | None:
        return self.tokens[self.index] if self.index < len(self.tokens) else None

    def _take(self) -> tuple[str, str]:
        token = self._peek()
        if token is None:
            raise self._fail("unexpected end of expression")
        self.index += 1
        return token

    def _expect(self, op: str) -> None:
        kind, text = self._take()
        if kind != "op" or text != op:
            raise self._fail(f"expected '{op}' but found '{text}'")

    def evaluate(self, context: Mapping[str, Any]) -> Any:
        if not self.tokens:
            raise self._fail("empty expression")
        value = self._primary(context)
        while self._peek() is not None:
            kind, text = self._take()
            if kind != "op" or text != "|":
                raise self._fail(f"operator or syntax '{text}' is not supported")
            if value is _MISSING and self._peek() != ("name", "default"):
                break
            value = self._filter(value, context)
        if value is _MISSING:
            raise KestraPebbleError(f"Missing variable: '{self.missing_path}' on '{self.template}' at line 1")
        return value

    def _literal(self, kind: str, text: str) -> Any:
        if kind == "str":
            return bytes(text[1:-1], "utf-8").decode("unicode_escape")
        if kind == "num":
            return float(text) if "." in text else int(text)
        return {"true": True, "false": False, "null": None}[text]

    def _primary(self, context: Mapping[str, Any]) -> Any:
        kind, text = self._take()
        if kind in ("str", "num") or (kind == "name" and text in ("true", "false", "null")):
            return self._literal(kind, text)
        if kind != "name":
            raise self._fail(f"'{text}' cannot start an expression")
        if text not in ROOTS:
            raise self._fail(f"variable '{text}' is outside the supported roots {', '.join(ROOTS)}")
        nxt = self._peek()
        if nxt is not None and nxt == ("op", "("):
            raise self._fail(f"function call '{text}(...)' is not supported")
        value: Any = context.get(text, _MISSING)
        if value is _MISSING:
            self.missing_path = text
        path = text
        while (nxt := self._peek()) is not None and nxt[0] == "op" and nxt[1] in (".", "["):
            self._take()
            if nxt[1] == ".":
                key_kind, key = self._take()
                if key_kind not in ("name", "num"):
                    raise self._fail(f"'{key}' cannot follow '.'")
                attribute: Any = key
            else:
                key_kind, key = self._take()
                if key_kind == "name" and key in ROOTS:
                    raise self._fail("nested variables inside [] are not supported")
                if key_kind not in ("str", "num"):
                    raise self._fail(f"'{key}' inside [] is not supported")
                attribute = self._literal(key_kind, key)
                self._expect("]")
            path = f"{path}.{attribute}"
            if value is not _MISSING:
                value = self._attribute(value, attribute, path)
        return value

    def _attribute(self, value: Any, attribute: Any, path: str) -> Any:
        if isinstance(value, Mapping) and str(attribute) in value:
            return value[str(attribute)]
        if isinstance(value, list):
            try:
                return value[int(attribute)]
            except (ValueError, IndexError):
                pass
        self.missing_path = path
        return _MISSING

    def _args(self, context: Mapping[str, Any]) -> list[Any]:
        args: list[Any] = []
        if self._peek() != ("op", "("):
            return args
        self._take()
        while self._peek() != ("op", ")"):
            args.append(self._primary(context))
            if self._peek() == ("op", ","):
                self._take()
        self._expect(")")
        return args

    def _filter(self, value: Any, context: Mapping[str, Any]) -> Any:
        kind, name = self._take()
        if kind != "name" or name not in _FILTERS:
            raise self._fail(f"filter '{name}' is not supported (supported: {', '.join(sorted(_FILTERS))})")
        if name == "default":
            # Like Pebble's strict mode: ``default`` is the one filter that accepts a missing variable.
            args = self._args(context)
            return value if value not in (None, "", _MISSING) else (args[0] if args else None)
        return _FILTERS[name](value, self._args(context))


_FILTERS: dict[str, Callable[[Any, list[Any]], Any]] = {
    "upper": lambda v, a: to_pebble_string(v).upper(),
    "lower": lambda v, a: to_pebble_string(v).lower(),
    "trim": lambda v, a: to_pebble_string(v).strip(),
    "toJson": lambda v, a: json.dumps(v, separators=(",", ":")),
    "json": lambda v, a: json.dumps(v, separators=(",", ":")),
    "length": lambda v, a: len(v) if isinstance(v, (str, list, dict)) else len(to_pebble_string(v)),
    "join": lambda v, a: (str(a[0]) if a else "").join(to_pebble_string(x) for x in (v or [])),
    "default": lambda v, a: v,
}
