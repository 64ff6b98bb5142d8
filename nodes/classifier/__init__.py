"""Event-based classifiers on top-layer spikes (thesis 3.3.1 spike-count readout, 3.3.2 supervised; and a
delta-rule readout of segment spike counts)."""

from nodes.classifier.readout import (
    DeltaParams,
    DeltaReadout,
    LabelAssignmentReadout,
    ReadoutParams,
    SupervisedClassifier,
    SupervisedParams,
)

__all__ = [
    "DeltaParams",
    "DeltaReadout",
    "LabelAssignmentReadout",
    "ReadoutParams",
    "SupervisedClassifier",
    "SupervisedParams",
]
