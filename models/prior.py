"""The rule prior: what decides before an area has enough labels.

The prior blames the cause whose component has the **largest share** of the whole in the
breach window (cache/model/workers bytes over memory in use, processing/network/database
time over latency, ...; each area's ``components``). Its probabilities are the shares plus a
small smoothing, normalized. When no share is known (every component missing or the whole
is zero) it falls back to the component with the **largest growth**, and when that is flat
too, to the first cause in flowchart order.

Its attribution for a share (or growth) feature is that value's distance from an even
split among the causes; every other feature gets 0.

>>> from perfloop.models.features import feature_names
>>> x = dict.fromkeys(feature_names("latency"), 0.0)
>>> x.update(share_processing=0.2, share_network=0.5, share_database=0.3)
>>> prior = RulePrior("latency")
>>> max(prior.predict_proba_one(x).items(), key=lambda kv: kv[1])[0]
'network'
>>> round(prior.explain_one(x)["share_network"], 3)
0.167
"""

from __future__ import annotations

from perfloop.areas import registry
from perfloop.models.base import Features, normalize

SMOOTHING = 0.05


class RulePrior:
    """The documented rule prior for one area (it does not learn)."""

    def __init__(self, area: str) -> None:
        self.area = area
        found = registry.get(area)
        self.causes = tuple(found.causes)
        self.components = dict(found.components)

    def _basis(self, x: Features) -> dict[str, str]:
        """cause -> the feature the rule reads (shares, else component growth)."""
        shares = {c: f"share_{c}" for c in self.causes}
        if any(x.get(f, 0.0) > 0 for f in shares.values()):
            return shares
        return {c: f"{self.components[c]}_growth" for c in self.causes}

    def learn_one(self, x: Features, y: str) -> None:
        """The rule does not learn."""

    def predict_proba_one(self, x: Features) -> dict[str, float]:
        basis = self._basis(x)
        scores = {c: max(0.0, x.get(f, 0.0)) for c, f in basis.items()}
        if not any(v > 0 for v in scores.values()):
            first = self.causes[0]
            return normalize(self.causes, {c: 1.0 + (c == first) for c in self.causes})
        return normalize(self.causes, {c: v + SMOOTHING for c, v in scores.items()})

    def explain_one(self, x: Features) -> dict[str, float]:
        basis = self._basis(x)
        used = {f: x.get(f, 0.0) for f in basis.values()}
        even = sum(used.values()) / len(used)
        out = dict.fromkeys(x, 0.0)
        for f, v in used.items():
            out[f] = v - even
        return out
