"""The demo's live timeline and summary, read from the loop's own topics.

Each incident transition becomes one line; diagnoses add their top features and
verifications their statistics.

>>> line = Timeline.format(12.3, "checkout", "memory", "breach", "memory_bytes.max 4e+10")
>>> line
'[   12.3s] checkout     memory       breach     memory_bytes.max 4e+10'
"""

from __future__ import annotations

import json
import statistics
import time
from collections import defaultdict
from typing import Any

from kafka import KafkaConsumer

from perfloop.schemas.config import TopicNames


class Timeline:
    """Follows incidents, diagnoses and verifications; prints and keeps what happened."""

    def __init__(self, bootstrap: str, names: TopicNames) -> None:
        self.names = names
        self.consumer = KafkaConsumer(
            names.incidents, names.diagnoses, names.verifications,
            bootstrap_servers=bootstrap, auto_offset_reset="earliest", enable_auto_commit=False,
        )  # fmt: skip
        self.started = time.monotonic()
        self.diagnoses: dict[str, dict[str, Any]] = {}
        self.verdicts: dict[str, dict[str, Any]] = {}
        self.incidents: dict[str, dict[str, Any]] = {}
        self.seen: set[tuple[str, int]] = set()

    @staticmethod
    def format(elapsed: float, service: str, area: str, what: str, text: str) -> str:
        return f"[{elapsed:7.1f}s] {service:<12} {area:<12} {what:<10} {text}"

    def say(self, service: str, area: str, what: str, text: str) -> None:
        print(self.format(time.monotonic() - self.started, service, area, what, text), flush=True)

    def poll(self, timeout_ms: int = 500) -> None:
        for records in self.consumer.poll(timeout_ms=timeout_ms).values():
            for record in records:
                value = json.loads(record.value)
                if record.topic == self.names.diagnoses:
                    self.diagnoses[value["breach_id"]] = value
                elif record.topic == self.names.verifications:
                    self.verdicts[value["verification_id"]] = value
                else:
                    self.transition(value)

    def transition(self, t: dict[str, Any]) -> None:
        key = (t["incident_id"], t["seq"])
        if key in self.seen:
            return  # a repeat after a restart
        self.seen.add(key)
        inc = self.incidents.setdefault(t["incident_id"], {
            "service": t["service"], "area": t["area"], "opened": t["ts"], "remedies": 0,
            "state": t["to_state"], "closed": None, "wall_opened": time.monotonic(),
        })  # fmt: skip
        inc["state"] = t["to_state"]
        service, area, state, detail = t["service"], t["area"], t["to_state"], t["detail"]
        if state == "breached" and t["seq"] == 0:
            self.say(service, area, "breach", t["reason"])
        elif state == "diagnosed" and t["seq"] == 1:
            diag = self.diagnoses.get(t["incident_id"], {})
            top = ", ".join(
                f"{f['name']} {f['attribution']:+.2f}" for f in diag.get("top_features", [])[:3]
            )
            self.say(service, area, "diagnosis", t["reason"] + (f" · {top}" if top else ""))
        elif state == "acting":
            inc["remedies"] += 1
            params = " ".join(f"{k}={v}" for k, v in detail.get("params", {}).items())
            self.say(service, area, f"remedy #{inc['remedies']}", f"{t['reason']} {params}")
        elif state == "diagnosed" and "verification_id" in detail or state == "resolved":
            v = self.verdicts.get(detail.get("verification_id", ""), {})
            stats = ""
            if v.get("p_value") is not None:
                stats = f" (p={v['p_value']:.2g}, effect {v['effect_size']:+.0%})"
            self.say(service, area, "verdict", f"{v.get('verdict', t['reason'])}{stats}")
        if state in ("resolved", "escalated"):
            inc["closed"] = t["ts"]
            inc["wall_closed"] = time.monotonic()
            took = t["ts"] - inc["opened"]
            if state == "resolved":
                text = f"after {inc['remedies']} remedies, {took:.0f} s of event time"
            else:
                text = t["reason"]
            self.say(service, area, state.upper(), text)

    def closed_keys(self) -> set[tuple[str, str]]:
        return {(i["service"], i["area"]) for i in self.incidents.values() if i["closed"]}

    def close(self) -> None:
        self.consumer.close()

    def summary(self, faults: set[tuple[str, str]]) -> None:
        print("\nsummary")
        by_state: dict[str, int] = defaultdict(int)
        for inc in self.incidents.values():
            by_state[inc["state"]] += 1
            wall = inc.get("wall_closed", time.monotonic()) - inc["wall_opened"]
            print(f"  {inc['service']:<12} {inc['area']:<12} {inc['state']:<10} "
                  f"{inc['remedies']} remedies, {wall:.0f} s")  # fmt: skip
        resolved = [i for i in self.incidents.values() if i["state"] == "resolved"]
        print(f"  incidents: {len(self.incidents)} "
              f"({', '.join(f'{n} {s}' for s, n in sorted(by_state.items()))})")  # fmt: skip
        if resolved:
            per = statistics.mean(i["remedies"] for i in resolved)
            took = statistics.median(i["closed"] - i["opened"] for i in resolved)
            wall = statistics.median(i["wall_closed"] - i["wall_opened"] for i in resolved)
            print(f"  remedies per resolution: {per:.1f}")
            print(
                f"  time to resolve (median): {took:.0f} s of event time, {wall:.0f} s of wall time"
            )
        missing = sorted(faults - self.closed_keys())
        if missing:
            print("  faults without a closed incident: "
                  + ", ".join(f"{s}/{a}" for s, a in missing))  # fmt: skip
