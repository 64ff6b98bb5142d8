"""Encoders: frames → events (delta modulation), events → network input (crop, filters, channels),
and the saccade-digit generator (N-MNIST-like streams from 28x28 images)."""

from nodes.encoder.delta import DeltaEncoder, DeltaParams
from nodes.encoder.events import EventTransform, TransformParams
from nodes.encoder.saccade import SaccadeParams, render_font_digits, render_saccade_frames, saccade_stream

__all__ = [
    "DeltaEncoder",
    "DeltaParams",
    "EventTransform",
    "SaccadeParams",
    "TransformParams",
    "render_font_digits",
    "render_saccade_frames",
    "saccade_stream",
]
