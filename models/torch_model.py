"""The torch cause classifier: a small network trained online, with a bounded replay.

One hidden layer (``hidden`` units, tanh) over running-standardized features (Welford
mean and variance, updated only by ``learn_one``). Each label takes one Adam step on the
new example plus ``replay_steps`` minibatch steps on examples sampled from the
``replay`` most recent labels. The model watches its own test-then-train errors with
river's ADWIN; when it detects a drift, the replay buffer is cut to the examples seen
since, so old-concept examples stop pulling the network back.

CPU only, one thread, deterministic: the initial weights come from
``torch.manual_seed(seed)`` (in a forked RNG, leaving the global one alone) and replay
sampling from a seeded numpy generator.

Attributions: integrated gradients of the predicted class's probability from the running
mean (the zero of the standardized space) to ``x``, ``ig_steps`` steps; they add up to the
change in that probability.

>>> m = TorchCauseClassifier(("a", "b"), seed=0)
>>> m.predict_proba_one({"x": 1.0})
{'a': 0.5, 'b': 0.5}
>>> for i in range(60):
...     m.learn_one({"x": float(i % 2)}, "ab"[i % 2])
>>> m.predict_proba_one({"x": 1.0})["b"] > 0.8
True
"""

from __future__ import annotations

import io
from collections import deque
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from river import drift

from perfloop.models.base import Features, normalize

torch.set_num_threads(1)


class TorchCauseClassifier:
    """A one-hidden-layer network over one area's causes, speaking the classifier protocol."""

    def __init__(
        self,
        causes: Sequence[str],
        hidden: int = 32,
        learning_rate: float = 0.01,
        replay: int = 256,
        replay_steps: int = 2,
        batch_size: int = 16,
        ig_steps: int = 16,
        seed: int = 0,
    ) -> None:
        self.causes = tuple(causes)
        self.hidden = hidden
        self.learning_rate = learning_rate
        self.replay = replay
        self.replay_steps = replay_steps
        self.batch_size = batch_size
        self.ig_steps = ig_steps
        self.seed = seed
        self._keys: tuple[str, ...] | None = None
        self._n = 0
        self._mean = np.zeros(0)
        self._m2 = np.zeros(0)
        self._buffer: deque[tuple[np.ndarray, int]] = deque(maxlen=replay)
        self._rng = np.random.default_rng(seed)
        self._drift = drift.ADWIN()
        self.drifts = 0
        self._net: torch.nn.Sequential | None = None
        self._opt: torch.optim.Optimizer | None = None

    # -- construction and persistence -------------------------------------------------

    def _build(self, n_features: int) -> None:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.seed)
            self._net = torch.nn.Sequential(
                torch.nn.Linear(n_features, self.hidden),
                torch.nn.Tanh(),
                torch.nn.Linear(self.hidden, len(self.causes)),
            )
        self._opt = torch.optim.Adam(self._net.parameters(), lr=self.learning_rate)

    def clone(self, include_state: bool = False) -> TorchCauseClassifier:
        """A fresh classifier with the same parameters (with the learnt state if asked)."""
        if include_state:
            return TorchCauseClassifier.loads(self.dumps())
        return TorchCauseClassifier(
            self.causes, self.hidden, self.learning_rate, self.replay, self.replay_steps,
            self.batch_size, self.ig_steps, self.seed,
        )  # fmt: skip

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        net, opt = state.pop("_net"), state.pop("_opt")
        blob = io.BytesIO()
        if net is not None and opt is not None:
            torch.save({"net": net.state_dict(), "opt": opt.state_dict()}, blob)
        state["_torch"] = blob.getvalue()
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        blob = state.pop("_torch")
        self.__dict__.update(state)
        self._net, self._opt = None, None
        if self._keys is not None:
            self._build(len(self._keys))
            saved = torch.load(io.BytesIO(blob), weights_only=True)
            assert self._net is not None and self._opt is not None
            self._net.load_state_dict(saved["net"])
            self._opt.load_state_dict(saved["opt"])

    def dumps(self) -> bytes:
        """The classifier's state (pickle around a ``torch.save``d state dict)."""
        import pickle

        return pickle.dumps(self)

    @staticmethod
    def loads(data: bytes) -> TorchCauseClassifier:
        import pickle

        obj = pickle.loads(data)
        if not isinstance(obj, TorchCauseClassifier):
            raise ValueError(f"data: not a TorchCauseClassifier but {type(obj).__name__}")
        return obj

    # -- the protocol -----------------------------------------------------------------

    def _vector(self, x: Features) -> np.ndarray:
        assert self._keys is not None
        return np.array([float(x.get(k, 0.0)) for k in self._keys], dtype=np.float64)

    def _standardize(self, v: np.ndarray) -> torch.Tensor:
        """Rows of raw values as standardized float32 (clipped to +-10 deviations)."""
        std = np.sqrt(self._m2 / max(self._n, 1))
        safe = np.where(std > 0, std, 1.0)
        z = np.where(std > 0, (v - self._mean) / safe, 0.0)
        return torch.from_numpy(np.clip(z, -10.0, 10.0).astype(np.float32))

    def _probs(self, z: torch.Tensor) -> torch.Tensor:
        assert self._net is not None
        return torch.softmax(self._net(z), dim=-1)

    def predict_proba_one(self, x: Features) -> dict[str, float]:
        if self._net is None:
            return normalize(self.causes, {})
        with torch.no_grad():
            p = self._probs(self._standardize(self._vector(x))).tolist()
        return normalize(self.causes, dict(zip(self.causes, p, strict=True)))

    def learn_one(self, x: Features, y: str) -> None:
        if y not in self.causes:
            raise ValueError(f"y: {y!r} is not one of {', '.join(self.causes)}")
        if self._keys is None:
            self._keys = tuple(x)
            self._mean = np.zeros(len(self._keys))
            self._m2 = np.zeros(len(self._keys))
            self._build(len(self._keys))
        target = self.causes.index(y)
        probs = self.predict_proba_one(x)
        self._watch(max(probs, key=lambda c: probs[c]) != y)
        v = self._vector(x)
        self._n += 1
        delta = v - self._mean
        self._mean = self._mean + delta / self._n
        self._m2 = self._m2 + delta * (v - self._mean)
        self._buffer.append((v, target))
        self._step([len(self._buffer) - 1])
        for _ in range(self.replay_steps):
            size = min(self.batch_size, len(self._buffer))
            self._step(self._rng.choice(len(self._buffer), size=size, replace=False).tolist())

    def _watch(self, error: bool) -> None:
        self._drift.update(float(error))
        if self._drift.drift_detected:
            self.drifts += 1
            keep = max(1, int(self._drift.width))
            while len(self._buffer) > keep:
                self._buffer.popleft()

    def _step(self, rows: list[int]) -> None:
        assert self._net is not None and self._opt is not None
        z = self._standardize(np.stack([self._buffer[i][0] for i in rows]))
        y = torch.tensor([self._buffer[i][1] for i in rows])
        self._opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(self._net(z), y)
        loss.backward()
        self._opt.step()

    def explain_one(self, x: Features) -> dict[str, float]:
        if self._net is None or self._keys is None:
            return dict.fromkeys(x, 0.0)
        z = self._standardize(self._vector(x))
        with torch.no_grad():
            cls = int(torch.argmax(self._probs(z)))
        alphas = (torch.arange(self.ig_steps, dtype=torch.float32) + 0.5) / self.ig_steps
        path = (alphas[:, None] * z[None, :]).requires_grad_(True)
        (grad,) = torch.autograd.grad(self._probs(path)[:, cls].sum(), path)
        ig = (z * grad.mean(dim=0)).tolist()
        return {k: ig[i] for i, k in enumerate(self._keys) if k in x}
