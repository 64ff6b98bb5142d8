"""The SDNN's online feature standardisation (``standardize = true``), one object for the node and for the
screening script, so that what is screened is what the node does.

Each feature is centred and scaled by the running mean and standard deviation (Welford) of the training
segments before it, never by statistics that include the segment itself; the result goes out as spike
counts of ``z+`` and ``z-`` (two channels per feature).
"""

from __future__ import annotations

import numpy as np

#: |z| is capped here, so that the first few digits' small spreads cannot ask for millions of spikes
#: (the cap is far out in the tails of a settled distribution)
Z_CLIP = 8.0


class RunningStandardizer:
    """Running count, mean and sum of squared deviations of ``features`` training features."""

    def __init__(self, features: int) -> None:
        self.n = 0
        self.mean = np.zeros(features)
        self.m2 = np.zeros(features)

    def counts(self, feats: np.ndarray, *, train: bool, quantum: float) -> np.ndarray:
        """Spike counts ``[2 * features]`` of ``feats`` standardised; a training segment then joins the
        statistics."""
        z = np.zeros_like(feats, dtype=np.float64)
        if self.n >= 2:
            sd = np.sqrt(self.m2 / (self.n - 1))
            # a spread within rounding of the mean (equal features summed in another order) is no spread
            live = sd > 1e-9 * (1.0 + np.abs(self.mean))
            z = np.where(live, (feats - self.mean) / np.where(live, sd, 1.0), 0.0)
            z = np.clip(z, -Z_CLIP, Z_CLIP)
        if train:
            self.n += 1
            delta = feats - self.mean
            self.mean += delta / self.n
            self.m2 += delta * (feats - self.mean)
        both = np.concatenate([np.maximum(z, 0.0), np.maximum(-z, 0.0)])
        return np.asarray(np.floor(both / quantum), dtype=np.int64)

    def state(self) -> dict[str, np.ndarray]:
        """The statistics as arrays (copies)."""
        return {"feature_n": np.array(self.n, np.int64), "feature_mean": self.mean.copy(), "feature_m2": self.m2.copy()}

    def load(self, state: dict[str, np.ndarray]) -> None:
        """Take statistics of ``state``; raises ValueError when they are of another number of features."""
        if state["feature_mean"].shape != self.mean.shape:
            msg = f"feature statistics of {state['feature_mean'].shape[0]} maps, expected {self.mean.shape[0]}"
            raise ValueError(msg)
        self.n = int(state["feature_n"])
        self.mean = np.array(state["feature_mean"], dtype=np.float64)
        self.m2 = np.array(state["feature_m2"], dtype=np.float64)
