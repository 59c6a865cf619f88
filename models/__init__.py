"""Learning: features from window aggregates, online cause classifiers, explanations.

The entry point is :class:`Diagnoser`; the pieces are importable on their own.
"""

from perfloop.models.base import CauseClassifier
from perfloop.models.diagnoser import Diagnoser, diagnosis_id
from perfloop.models.ensemble import AccuracyWeightedEnsemble
from perfloop.models.explain import attribution_entropy, attribution_sparsity, top_features
from perfloop.models.features import conform, extract_features, feature_names
from perfloop.models.prior import RulePrior
from perfloop.models.quality import PrequentialAccuracy
from perfloop.models.river_model import RiverCauseClassifier
from perfloop.models.torch_model import TorchCauseClassifier

__all__ = [
    "AccuracyWeightedEnsemble",
    "CauseClassifier",
    "Diagnoser",
    "PrequentialAccuracy",
    "RiverCauseClassifier",
    "RulePrior",
    "TorchCauseClassifier",
    "attribution_entropy",
    "attribution_sparsity",
    "conform",
    "diagnosis_id",
    "extract_features",
    "feature_names",
    "top_features",
]
