"""Event-based classifiers on top-layer spikes (thesis 3.3.1 spike-count readout, 3.3.2 supervised; and a
delta-rule readout of segment spike counts; an e-prop readout of LIF neurons)."""

from nodes.classifier.eprop import EpropParams, EpropReadout, EpropRule
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
    "EpropParams",
    "EpropReadout",
    "EpropRule",
    "LabelAssignmentReadout",
    "ReadoutParams",
    "SupervisedClassifier",
    "SupervisedParams",
]
