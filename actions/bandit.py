"""The learned success rate of each remedy per cause: a Beta-Bernoulli bandit.

Each (area, cause, remedy) has a Beta(alpha, beta) posterior over its chance of fixing that
cause. The prior comes from the flowchart: for a cause with ``k`` remedies, the remedy at
position ``i`` (0-based) starts at ``alpha = strength * (k - i) / k`` and ``beta = 1``, so
the prior means decrease along the flowchart.

Ranking (see :meth:`RemedyBandit.rank`) uses Thompson sampling, with one rule that keeps the
flowchart authoritative before anything is learned: when none of the candidates has an
observed outcome yet, they are ranked by prior mean (the flowchart order) and no sample is
drawn, so sampling noise can never reorder an empty history. Ties are broken by flowchart
position. ``mode="mean"`` ranks by posterior mean always (no exploration).

>>> bandit = RemedyBandit()
>>> bandit.rank("memory", "cache", ["compress_data", "reduce_ttl", "increase_eviction"])
['reduce_ttl', 'increase_eviction', 'compress_data']
>>> for _ in range(20):
...     bandit.reward("memory", "cache", "compress_data", True)
...     bandit.reward("memory", "cache", "reduce_ttl", False)
>>> bandit.rank("memory", "cache", ["reduce_ttl", "compress_data"], key="incident-7:2")
['compress_data', 'reduce_ttl']
>>> alpha, beta = RemedyBandit.loads(bandit.dumps()).posterior("memory", "cache", "compress_data")
>>> round(alpha, 2), beta
(20.67, 1.0)
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Sequence
from typing import Literal

import numpy as np

from perfloop.schemas.vocabulary import remedies_of

RankMode = Literal["thompson", "mean"]
_FORMAT = 1
RECENT_OUTCOMES = 256


class RemedyBandit:
    """Beta-Bernoulli success rates per (area, cause, remedy), flowchart order as the prior.

    Deterministic: a ranking depends only on ``seed``, the outcomes seen and the ``key``
    given to :meth:`rank` (the planner passes the incident and attempt).
    """

    def __init__(
        self, seed: int = 0, prior_strength: float = 2.0, mode: RankMode = "thompson"
    ) -> None:
        if not prior_strength > 0:
            raise ValueError(f"prior_strength: {prior_strength!r} must be positive")
        if mode not in ("thompson", "mean"):
            raise ValueError(f"mode: {mode!r} is not 'thompson' or 'mean'")
        self.seed = seed
        self.prior_strength = prior_strength
        self.mode = mode
        self._counts: dict[str, list[int]] = {}  # "area/cause/remedy" -> [successes, failures]
        # the most recent outcomes with their event time, so that a ranking at event time
        # ``now`` leaves out what was verified after it (a replay then ranks the same way)
        self._recent: dict[str, list[tuple[float, bool]]] = {}

    # -- learning --------------------------------------------------------------------------
    def reward(
        self, area: str, cause: str, remedy: str, success: bool, ts: float | None = None
    ) -> None:
        """Record one verified outcome of ``remedy`` for ``cause`` (verified at event time
        ``ts``, when known)."""
        self._position(area, cause, remedy)  # validates the names
        name = f"{area}/{cause}/{remedy}"
        counts = self._counts.setdefault(name, [0, 0])
        counts[0 if success else 1] += 1
        if ts is not None:
            recent = self._recent.setdefault(name, [])
            recent.append((float(ts), bool(success)))
            del recent[:-RECENT_OUTCOMES]

    # -- querying --------------------------------------------------------------------------
    def _seen(self, name: str, now: float | None) -> tuple[int, int]:
        wins, losses = self._counts.get(name, (0, 0))
        if now is not None:
            for ts, success in self._recent.get(name, ()):
                if ts > now:
                    wins, losses = (wins - 1, losses) if success else (wins, losses - 1)
        return wins, losses

    def observations(self, area: str, cause: str, remedy: str, now: float | None = None) -> int:
        """How many outcomes of this remedy have been recorded (up to event time ``now``)."""
        return sum(self._seen(f"{area}/{cause}/{remedy}", now))

    def prior(self, area: str, cause: str, remedy: str) -> tuple[float, float]:
        """The flowchart prior (alpha, beta) of this remedy."""
        position, k = self._position(area, cause, remedy)
        return (self.prior_strength * (k - position) / k, 1.0)

    def posterior(
        self, area: str, cause: str, remedy: str, now: float | None = None
    ) -> tuple[float, float]:
        """The posterior (alpha, beta): the prior plus successes and failures (up to ``now``)."""
        a, b = self.prior(area, cause, remedy)
        wins, losses = self._seen(f"{area}/{cause}/{remedy}", now)
        return (a + wins, b + losses)

    def mean(self, area: str, cause: str, remedy: str, now: float | None = None) -> float:
        """The posterior mean success rate."""
        a, b = self.posterior(area, cause, remedy, now)
        return a / (a + b)

    def rank(
        self,
        area: str,
        cause: str,
        candidates: Sequence[str],
        *,
        key: str = "",
        now: float | None = None,
    ) -> list[str]:
        """``candidates`` best first (see the module docstring for the rule); with ``now``,
        only outcomes verified up to that event time count."""
        if not candidates:
            return []
        positions = [self._position(area, cause, name)[0] for name in candidates]
        evidence = any(self.observations(area, cause, name, now) for name in candidates)
        if self.mode == "thompson" and evidence:
            rng = np.random.default_rng([self.seed, zlib.crc32(f"{area}/{cause}/{key}".encode())])
            params = [self.posterior(area, cause, name, now) for name in candidates]
            scores = [float(rng.beta(a, b)) for a, b in params]
        else:
            scores = [self.mean(area, cause, name, now) for name in candidates]
        order = sorted(range(len(candidates)), key=lambda i: (-scores[i], positions[i]))
        return [candidates[i] for i in order]

    # -- checkpointing ---------------------------------------------------------------------
    def dumps(self) -> str:
        """The bandit's whole state as JSON text (see :meth:`loads`)."""
        return json.dumps(
            {
                "format": _FORMAT,
                "seed": self.seed,
                "prior_strength": self.prior_strength,
                "mode": self.mode,
                "counts": {k: list(v) for k, v in sorted(self._counts.items())},
                "recent": {k: [list(e) for e in v] for k, v in sorted(self._recent.items())},
            },
            sort_keys=True,
        )

    @classmethod
    def loads(cls, text: str) -> RemedyBandit:
        """A bandit from :meth:`dumps` output; ``ValueError`` naming what is wrong."""
        data = json.loads(text)
        if not isinstance(data, dict) or data.get("format") != _FORMAT:
            raise ValueError(f"format: expected bandit state format {_FORMAT}")
        bandit = cls(int(data["seed"]), float(data["prior_strength"]), data["mode"])
        for name, pair in data["counts"].items():
            area, cause, remedy = name.split("/")
            bandit._position(area, cause, remedy)
            if not (
                isinstance(pair, list)
                and len(pair) == 2
                and all(isinstance(n, int) and n >= 0 for n in pair)
            ):
                raise ValueError(f"counts.{name}: {pair!r} is not [successes, failures]")
            bandit._counts[name] = [pair[0], pair[1]]
        for name, events in data.get("recent", {}).items():
            bandit._recent[name] = [(float(ts), bool(ok)) for ts, ok in events]
        return bandit

    @staticmethod
    def _position(area: str, cause: str, remedy: str) -> tuple[int, int]:
        names = remedies_of(area, cause)
        if remedy not in names:
            raise ValueError(f"remedy: {remedy!r} is not a remedy for {area}/{cause}")
        return names.index(remedy), len(names)

    def __repr__(self) -> str:
        return (
            f"RemedyBandit(seed={self.seed}, prior_strength={self.prior_strength}, "
            f"mode={self.mode!r})"
        )


def verdict_reward(verdict: str) -> bool | None:
    """The reward a verification verdict gives the remedy it judged (None: no evidence).

    Only ``resolved`` is a success: the remedy fixed the problem. ``improved``, ``unchanged``
    and ``regressed`` are failures (the incident needs another remedy); ``no_data`` is nothing.
    Counting ``improved`` as a success taught the bandit little: any remedy of the right cause
    that weakens a fault improves it, so the first remedy tried kept winning (measured with
    ``bench/bench_learning.py``).

    >>> verdict_reward("improved"), verdict_reward("regressed"), verdict_reward("no_data")
    (False, False, None)
    """
    if verdict == "resolved":
        return True
    if verdict in ("improved", "unchanged", "regressed"):
        return False
    if verdict == "no_data":
        return None
    raise ValueError(f"verdict: unknown verdict {verdict!r}")
