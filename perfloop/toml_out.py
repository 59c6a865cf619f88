"""Writing configuration files: nested dicts of scalars and lists as TOML text.

>>> print(to_toml({"a": {"b": 1.0, "c": {"d": "x"}}, "e": None}), end="")
[a]
b = 1.0
[a.c]
d = "x"
"""

from __future__ import annotations

import json
import re
from typing import Any


def _value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_value(v) for v in value) + "]"
    raise TypeError(f"value: {value!r} has no TOML form here")


def to_toml(data: dict[str, Any], prefix: str = "") -> str:
    """``data`` as TOML; ``None`` values are left out."""
    plain = [f"{k} = {_value(v)}" for k, v in data.items() if not isinstance(v, dict | None)]
    lines = ([f"[{prefix}]"] if prefix and plain else []) + plain
    for key, value in data.items():
        if isinstance(value, dict):
            name = key if re.fullmatch(r"[A-Za-z0-9_-]+", key) else json.dumps(key)
            lines.append(to_toml(value, f"{prefix}.{name}" if prefix else name).rstrip("\n"))
    return "\n".join(line for line in lines if line) + "\n"
