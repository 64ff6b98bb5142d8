"""Encoders: frames → events (delta modulation) and events → network input (crop, filters, channels)."""

from nodes.encoder.delta import DeltaEncoder, DeltaParams
from nodes.encoder.events import EventTransform, TransformParams

__all__ = ["DeltaEncoder", "DeltaParams", "EventTransform", "TransformParams"]
