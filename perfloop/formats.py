"""One compact human line per perfloop message, by the role of the topic it came from.

>>> from datetime import UTC
>>> breach = (b'{"breach_id":"checkout:latency:1700000000000","service":"checkout",'
...           b'"area":"latency","signal":"latency_ms.p95","observed":612.0,"threshold":500.0,'
...           b'"direction":"above","window_start":1700000000,"window_end":1700000010,'
...           b'"first_window_start":1700000000,"windows":2}')
>>> format_value("breaches", breach, tz=UTC)
'22:13:30 checkout latency p95 612.0 > 500.0 (breach checkout:latency:1700000000000)'
>>> format_value("metrics", b'{"service":"api","metric":"cache_hits","ts":[1700000000,1700000001],'
...              b'"values":[3,5],"labels":{"tier":"l1"}}', tz=UTC)
'22:13:20 api cache_hits{tier=l1} 2 points to 22:13:21, min 3.0 max 5.0 last 5.0'
>>> format_value("metrics", b'not json', tz=UTC)
'not json'
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime, tzinfo
from typing import Any

from perfloop.areas import registry
from perfloop.schemas.config import TopicNames

Formatter = Callable[[dict[str, Any], tzinfo | None], str]


def roles_by_topic(names: TopicNames) -> dict[str, str]:
    """Topic name -> catalog role (``metrics``, ``breaches``, ...) for the configured names."""
    return {name: role for role, name in names.model_dump().items()}


def _hms(ts: float, tz: tzinfo | None) -> str:
    return datetime.fromtimestamp(float(ts), tz).strftime("%H:%M:%S")


def _num(x: float) -> str:
    x = float(x)
    if x.is_integer() and abs(x) < 1e6:
        return f"{x:.1f}"
    return f"{x:.4g}"


def _labels(msg: dict[str, Any]) -> str:
    labels = msg.get("labels") or {}
    inner = ",".join(f"{k}={v}" for k, v in sorted(labels.items()))
    return f"{{{inner}}}" if inner else ""


def _metric(m: dict[str, Any], tz: tzinfo | None) -> str:
    head = f"{m['service']} {m['metric']}{_labels(m)}"
    if "values" not in m:
        return f"{_hms(m['ts'], tz)} {head} {_num(m['value'])}"
    ts, values = m["ts"], m["values"]
    return (
        f"{_hms(ts[0], tz)} {head} {len(values)} points to {_hms(ts[-1], tz)}, "
        f"min {_num(min(values))} max {_num(max(values))} last {_num(values[-1])}"
    )


def _dead_letter(m: dict[str, Any], tz: tzinfo | None) -> str:
    where = f"{m['source_topic']}:{m['partition']}:{m['offset']}"
    return f"{_hms(m['rejected_at'], tz)} dead-letter {m['kind']} {where}: {m['reason']}"


def _window(m: dict[str, Any], tz: tzinfo | None) -> str:
    series = m["series"]
    names = ", ".join(dict.fromkeys(s["metric"] for s in series[:50]))
    span = f"{_hms(m['start'], tz)}-{_hms(m['end'], tz)}"
    return f"{_hms(m['end'], tz)} {m['service']} window {span}, {len(series)} series: {names}"


def _signal(area: str, signal: str) -> str:
    """The signal as a line shows it: just the statistic when the area has one trigger on one
    metric (``latency p95 720 > 500``), else its whole name."""
    try:
        triggers = registry.get(area).triggers
    except ValueError:
        return signal
    if len(triggers) == 1 and len(triggers[0].metrics) == 1 and triggers[0].name == signal:
        return signal.removeprefix(f"{triggers[0].metrics[0]}.")
    return signal


def _breach(m: dict[str, Any], tz: tzinfo | None) -> str:
    op = ">" if m["direction"] == "above" else "<"
    return (
        f"{_hms(m['window_end'], tz)} {m['service']} {m['area']} {_signal(m['area'], m['signal'])} "
        f"{_num(m['observed'])} {op} {_num(m['threshold'])} (breach {m['breach_id']})"
    )


def _diagnosis(m: dict[str, Any], tz: tzinfo | None) -> str:
    p = m["probabilities"].get(m["cause"], 0.0)
    top = ", ".join(f"{f['name']} {f['attribution']:+.2f}" for f in m["top_features"][:3])
    return (
        f"{_hms(m['window_end'], tz)} {m['service']} {m['area']} cause {m['cause']} {p:.0%} "
        f"by {m['decider']} [{top}] (breach {m['breach_id']})"
    )


def _action(m: dict[str, Any], tz: tzinfo | None) -> str:
    params = " ".join(f"{k}={v}" for k, v in sorted((m.get("params") or {}).items()))
    extra = (" dry-run" if m.get("dry_run") else "") + (f" {params}" if params else "")
    return (
        f"{_hms(m['issued_at'], tz)} {m['service']} {m['area']}/{m['cause']} {m['remedy']} "
        f"attempt {m['attempt']}{extra} (action {m['action_id']})"
    )


def _result(m: dict[str, Any], tz: tzinfo | None) -> str:
    by = m.get("handler") or "-"
    detail = f": {m['detail']}" if m.get("detail") else ""
    return (
        f"{_hms(m['ts'], tz)} {m.get('service') or '-'} {m['status']} {m['action_id']} "
        f"by {by} in {float(m.get('duration_ms', 0)):.0f} ms{detail}"
    )


def _verification(m: dict[str, Any], tz: tzinfo | None) -> str:
    p, effect = m.get("p_value"), m.get("effect_size")
    stats = (f" p={p:.3g}" if p is not None else "") + (
        f" effect {effect:+.2f}" if effect is not None else ""
    )
    return (
        f"{_hms(m['window_end'], tz)} {m['service']} {m['area']} {m['verdict']}{stats} "
        f"(action {m['action_id']})"
    )


def _incident(m: dict[str, Any], tz: tzinfo | None) -> str:
    return (
        f"{_hms(m['ts'], tz)} {m['service']} {m['area']} {m.get('from_state') or 'new'} -> "
        f"{m['to_state']}: {m['reason']} (incident {m['incident_id']})"
    )


def _label(m: dict[str, Any], tz: tzinfo | None) -> str:
    return (
        f"{_hms(m['ts'], tz)} {m['service']} {m['area']} cause {m['cause']} "
        f"from {m.get('source', 'person')} (incident {m['incident_id']})"
    )


FORMATTERS: dict[str, Formatter] = {
    "metrics": _metric,
    "dlq": _dead_letter,
    "windows": _window,
    "breaches": _breach,
    "diagnoses": _diagnosis,
    "actions": _action,
    "action_results": _result,
    "verifications": _verification,
    "incidents": _incident,
    "labels": _label,
}


def raw_text(value: bytes | None) -> str:
    """The value as text: itself when UTF-8, else with replacement characters."""
    return "null" if value is None else value.decode("utf-8", errors="replace")


def format_value(role: str | None, value: bytes | None, tz: tzinfo | None = None) -> str:
    """The one-line form of ``value`` for a topic of ``role``; raw text when it does not fit."""
    formatter = FORMATTERS.get(role or "")
    if formatter is None or value is None:
        return raw_text(value)
    try:
        message = json.loads(value)
        if isinstance(message, dict):
            return formatter(message, tz)
    except (ValueError, KeyError, TypeError, IndexError, AttributeError, OverflowError):
        pass
    return raw_text(value)
