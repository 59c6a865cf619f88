"""Learning: features from window aggregates, online cause classifiers, explanations.

The entry point is :class:`Diagnoser`; the pieces are importable on their own.
"""

from models.base import CauseClassifier
from models.diagnoser import Diagnoser, diagnosis_id
from models.ensemble import AccuracyWeightedEnsemble
from models.explain import attribution_entropy, attribution_sparsity, top_features
from models.features import conform, extract_features, feature_names
from models.prior import RulePrior
from models.quality import PrequentialAccuracy
from models.river_model import RiverCauseClassifier
from models.torch_model import TorchCauseClassifier

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
