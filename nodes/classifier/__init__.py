"""Event-based classifiers on top-layer spikes (thesis 3.3.1 spike-count readout, 3.3.2 supervised)."""

from nodes.classifier.readout import (
    LabelAssignmentReadout,
    ReadoutParams,
    SupervisedClassifier,
    SupervisedParams,
)

__all__ = ["LabelAssignmentReadout", "ReadoutParams", "SupervisedClassifier", "SupervisedParams"]
