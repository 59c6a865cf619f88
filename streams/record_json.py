"""Record values as JSON objects: parsed fast, judged as the standard library would.

>>> load_values([b'{"a": 1}', b'{"b": [2]}'])
[{'a': 1}, {'b': [2]}]
>>> [bad.reason for bad in load_values([b"[]", None])]
['json: expected an object, got list', 'json: empty record (no value)']
"""

from __future__ import annotations

import itertools
import json
from typing import Any

from pydantic_core import from_json

from perfloop.streams.point_rules import BadField, kind

_JSON = json.JSONDecoder()


def load_values(raws: list[bytes | None]) -> list[Any]:
    """Per record value, what :func:`load_value` returns, or the
    :class:`~perfloop.streams.point_rules.BadField` it raises.

    Values are parsed with pydantic-core's JSON parser (several times faster than the
    standard library's on number arrays). It accepts no text that the standard library
    rejects and parses what both accept to equal values; where it fails (bad input, but
    also lone surrogate escapes or deep nesting, which the standard library takes),
    :func:`load_value` parses the value again and names the problem, so the outcome is the
    standard library's either way.

    Values that are all ``{``-led objects without a ``[`` byte are parsed in one go as
    ``[v1,\nv2,...]``. That parse equals the parses of the values one by one whenever it
    succeeds with one item a value: a raw newline cannot be inside a JSON string, so no
    string spans a joint; a joint's comma is then structural and, as ``{`` follows it,
    not inside an object; without ``[`` there is no other array than the outer one, so
    every joint separates two items, and with exactly one item a value each value is a
    whole JSON text by itself. Anything else falls back to one parse a value.
    """
    if len(raws) > 1:
        try:
            opened = all(map(bytes.startswith, raws, itertools.repeat(b"{")))  # type: ignore[arg-type]  # TypeError on None
            body = b",\n".join([b"[" + raws[0], *raws[1:-1], raws[-1] + b"]"])  # type: ignore[operator, list-item]
            if opened and body.count(b"[") == 1:
                objs = from_json(body)
                if len(objs) == len(raws):
                    return objs
        except Exception:  # noqa: BLE001 - any failure: parse one by one below
            pass
    out: list[Any] = []
    for raw in raws:
        try:
            obj = from_json(raw)  # type: ignore[arg-type]  # TypeError on None
            if type(obj) is dict:
                out.append(obj)
                continue
        except Exception:  # noqa: BLE001 - load_value names the problem
            pass
        try:
            out.append(load_value(raw))
        except BadField as bad:
            out.append(bad)
    return out


def load_value(raw: bytes | None) -> dict[str, Any]:
    """A record value as a JSON object, parsed by the standard library; BadField otherwise."""
    if raw is None:
        raise BadField("json", "json: empty record (no value)")
    try:
        obj = _JSON.decode(raw.decode())
    except UnicodeDecodeError as exc:
        raise BadField("json", f"json: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except json.JSONDecodeError as exc:
        raise BadField("json", f"json: malformed ({exc.msg} at char {exc.pos})") from None
    except RecursionError:
        raise BadField("json", "json: nested too deeply") from None
    if type(obj) is not dict:
        raise BadField("json", f"json: expected an object, got {kind(obj)}")
    return obj
