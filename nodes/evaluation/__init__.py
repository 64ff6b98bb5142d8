"""Accuracy, online training curve and confusion matrix of classifier decisions."""

from nodes.evaluation.metrics import Evaluator, accuracy, confusion_matrix

__all__ = ["Evaluator", "accuracy", "confusion_matrix"]
