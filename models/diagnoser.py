"""The diagnoser: one prior and one learnt ensemble per area, from breach to diagnosis.

``diagnose`` turns a breach and the service's recent windows into a
:class:`~perfloop.schemas.messages.Diagnosis`: features (kept in the diagnosis, so the loop can
learn from them later), class probabilities, the decider, the top attributions and their entropy
and sparsity, and the area's prequential accuracy. Until an area has
``DiagnosisConfig.min_labels`` labels the rule prior (:mod:`perfloop.models.prior`) decides; then
the ensemble of a river and a torch classifier (:mod:`perfloop.models.ensemble`) does.

``learn_label`` learns each incident once: a second label for the same incident id is
ignored (the most recent ``remember`` ids are kept). Prequential accuracy is test-then-train
on the labels: the decision the diagnoser would make on the label's features, just before
learning them.

>>> import random
>>> from perfloop.models.synthetic import synthetic_history
>>> from perfloop.schemas.messages import Breach
>>> history = synthetic_history("memory", "model", random.Random(0))
>>> breach = Breach(breach_id="b1", service="svc", area="memory", signal="memory_bytes",
...     observed=4e10, threshold=3.36e10, direction="above", window_start=history[-1].start,
...     window_end=history[-1].end, first_window_start=history[-2].start, windows=2)
>>> d = Diagnoser().diagnose(breach, history, incident_id="i1")
>>> d.diagnosis_id, d.decider, sorted(d.probabilities)
('b1:diag', 'prior', ['cache', 'model', 'workers'])
"""

from __future__ import annotations

import hashlib
import pickle
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal, cast

from perfloop.areas import registry
from perfloop.models.base import CauseClassifier, Features
from perfloop.models.ensemble import AccuracyWeightedEnsemble
from perfloop.models.explain import attribution_entropy, attribution_sparsity, top_features
from perfloop.models.features import conform, extract_features
from perfloop.models.prior import RulePrior
from perfloop.models.quality import PrequentialAccuracy
from perfloop.models.river_model import RiverCauseClassifier
from perfloop.models.torch_model import TorchCauseClassifier
from perfloop.schemas.config import DetectionConfig, DiagnosisConfig
from perfloop.schemas.messages import Breach, Diagnosis, WindowAggregate
from perfloop.schemas.vocabulary import causes_of

MAX_NAME = 128
MEMBERS = ("river", "torch")
Decider = Literal["prior", "river", "torch", "ensemble"]


def diagnosis_id(breach_id: str) -> str:
    """The diagnosis id of a breach: ``f"{breach_id}:diag"`` (hashed when too long).

    >>> diagnosis_id("svc:memory:1700000000")
    'svc:memory:1700000000:diag'
    >>> len(diagnosis_id("b" * 128))
    128
    """
    out = f"{breach_id}:diag"
    if len(out) <= MAX_NAME:
        return out
    digest = hashlib.sha256(breach_id.encode()).hexdigest()[:16]
    return f"{breach_id[: MAX_NAME - 22]}:{digest}:diag"


@dataclass
class AreaModel:
    """What the diagnoser knows about one area."""

    prior: RulePrior
    ensemble: AccuracyWeightedEnsemble
    accuracy: PrequentialAccuracy
    labels_seen: int = 0


class Diagnoser:
    """Diagnoses breaches and learns from labels, per area."""

    def __init__(
        self,
        config: DiagnosisConfig | None = None,
        river_model: str = "softmax",
        members: Sequence[str] = MEMBERS,
        ensemble_window: int = 50,
        remember: int = 100_000,
    ) -> None:
        self.config = config or DiagnosisConfig.model_validate({})
        self.river_model = river_model
        self.members = tuple(members)
        self.ensemble_window = ensemble_window
        self.remember = remember
        unknown = set(self.members) - set(MEMBERS)
        if unknown or not self.members:
            raise ValueError(f"members: {list(members)!r}; choose among {', '.join(MEMBERS)}")
        #: area -> its model, made when the area is first asked for (any registered area)
        self.areas: dict[str, AreaModel] = {}
        self._learnt: OrderedDict[str, None] = OrderedDict()

    def _area_model(self, area: str) -> AreaModel:
        causes, seed = causes_of(area), self.config.seed
        members: dict[str, CauseClassifier] = {}
        if "river" in self.members:
            members["river"] = RiverCauseClassifier(causes, self.river_model, seed=seed)
        if "torch" in self.members:
            members["torch"] = TorchCauseClassifier(causes, seed=seed)
        return AreaModel(
            prior=RulePrior(area),
            ensemble=AccuracyWeightedEnsemble(members, window=self.ensemble_window),
            accuracy=PrequentialAccuracy(self.config.accuracy_window),
        )

    def _model(self, area: str) -> AreaModel:
        found = self.areas.get(area)
        if found is None:
            registry.get(area)  # ValueError naming the known areas
            found = self.areas[area] = self._area_model(area)
        return found

    # -- deciding ---------------------------------------------------------------------

    def decide(
        self, area: str, features: Features, explain: bool = True
    ) -> tuple[dict[str, float], str, dict[str, float]]:
        """(probabilities, decider, attribution) for ``features`` of ``area`` (pure)."""
        model = self._model(area)
        x = conform(area, features)
        if model.labels_seen < self.config.min_labels:
            probs = model.prior.predict_proba_one(x)
            return probs, "prior", model.prior.explain_one(x) if explain else {}
        return model.ensemble.decide(x, explain=explain)

    def diagnose(
        self,
        breach: Breach,
        history: Sequence[WindowAggregate],
        incident_id: str | None = None,
        detection: DetectionConfig | None = None,
    ) -> Diagnosis:
        """The diagnosis of ``breach`` from the service's windows (oldest first, the breach
        window last), read with ``detection`` (the service's; the defaults if none)."""
        area = breach.area
        x = extract_features(area, history, detection)
        probs, decider, attribution = self.decide(area, x)
        cause = max(causes_of(area), key=lambda c: probs[c])
        model = self._model(area)
        return Diagnosis(
            diagnosis_id=diagnosis_id(breach.breach_id),
            breach_id=breach.breach_id,
            incident_id=incident_id,
            service=breach.service,
            area=area,
            cause=cause,
            probabilities=probs,
            decider=cast(Decider, decider),
            top_features=top_features(x, attribution, self.config.top_features),
            attribution_entropy=attribution_entropy(attribution),
            attribution_sparsity=attribution_sparsity(attribution),
            prequential_accuracy=model.accuracy.value,
            labels_seen=model.labels_seen,
            features=x,
            window_end=breach.window_end,
        )

    # -- learning ---------------------------------------------------------------------

    def learn_label(
        self, incident_id: str, area: str, features: Mapping[str, float], cause: str
    ) -> bool:
        """Learn that ``features`` of ``area`` had ``cause``; False if this incident was
        already learnt."""
        if cause not in causes_of(area):
            raise ValueError(
                f"cause: {cause!r} is not a cause of area {area!r}; "
                f"known: {', '.join(causes_of(area))}"
            )
        if incident_id in self._learnt:
            return False
        self._learnt[incident_id] = None
        while len(self._learnt) > self.remember:
            self._learnt.popitem(last=False)
        self.learn(area, features, cause)
        return True

    def learn(self, area: str, features: Mapping[str, float], cause: str) -> None:
        """Learn one label (test-then-train), without incident deduplication."""
        model = self._model(area)
        x = conform(area, features)
        probs, _, _ = self.decide(area, x, explain=False)
        model.accuracy.update(max(probs, key=lambda c: probs[c]) == cause)
        model.ensemble.learn_one(x, cause)
        model.labels_seen += 1

    def accuracy(self, area: str) -> float | None:
        """The area's prequential accuracy over the last ``accuracy_window`` labels."""
        return self._model(area).accuracy.value

    def labels_seen(self, area: str) -> int:
        return self._model(area).labels_seen

    # -- persistence ------------------------------------------------------------------

    def dumps(self) -> bytes:
        """The whole state (pickle, torch weights as ``torch.save`` bytes); load only trusted
        bytes."""
        return pickle.dumps(self)

    @staticmethod
    def loads(data: bytes) -> Diagnoser:
        obj = pickle.loads(data)
        if not isinstance(obj, Diagnoser):
            raise ValueError(f"data: not a Diagnoser but {type(obj).__name__}")
        return obj

    def clone(self, include_state: bool = False) -> Diagnoser:
        """A fresh diagnoser with the same parameters (with the learnt state if asked)."""
        if include_state:
            return Diagnoser.loads(self.dumps())
        return Diagnoser(
            self.config, self.river_model, self.members, self.ensemble_window, self.remember
        )
