"""The picture around the events: where each part of a frame goes (``Layout``), and the time stamp, event
rate, prediction bars and caption drawn with OpenCV over it.

A frame, top to bottom: a strip with the time stamp and event rate; the sensor, each pixel a
``scale x scale`` block, centred; and, when there are predictions, a panel with one bar per class.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from recordings.video.predictions import Shown

# Colours, BGR.
MARGIN = (16, 16, 16)  #: the canvas around the sensor
SENSOR = (48, 48, 48)  #: a sensor pixel without events
ON = np.array([90, 220, 255], dtype=np.uint8)  #: a pixel whose events are mostly ON (warm yellow)
OFF = np.array([255, 150, 50], dtype=np.uint8)  #: a pixel whose events are mostly OFF (blue)
TEXT = (235, 235, 235)
DIM = (150, 150, 150)
BAR = (120, 120, 120)  #: a class's score
BAR_PREDICTED = (40, 170, 255)  #: the predicted class's score (orange)
TRUTH = (90, 210, 90)  #: the true class's number (green)
WRONG = (80, 80, 235)

STRIP = 26  #: height of the time strip, px
PANEL = 112  #: height of the prediction panel, px
CAPTION = 20  #: height of the caption line, px
MIN_WIDTH = 320  #: narrowest canvas (room for the text)
FONT = cv2.FONT_HERSHEY_SIMPLEX


@dataclass(frozen=True, kw_only=True)
class Layout:
    """Where the parts of a frame go, in pixels of the canvas (``width x height``, both even: video codecs
    want even sizes)."""

    sensor_width: int
    sensor_height: int
    scale: int
    classes: int = 0  #: prediction bars (0: no panel)
    caption: bool = False  #: a caption line under everything

    @property
    def width(self) -> int:
        """Canvas width."""
        w = max(self.sensor_width * self.scale, MIN_WIDTH)
        return w + w % 2

    @property
    def height(self) -> int:
        """Canvas height."""
        h = STRIP + self.sensor_height * self.scale + (PANEL if self.classes else 0) + (CAPTION if self.caption else 0)
        return h + h % 2

    @property
    def origin(self) -> tuple[int, int]:
        """``(row, column)`` of the sensor's top-left pixel."""
        return STRIP, (self.width - self.sensor_width * self.scale) // 2

    def pixel(self, x: int, y: int) -> tuple[int, int]:
        """``(row, column)`` of the centre of sensor pixel ``(x, y)``'s block."""
        oy, ox = self.origin
        return oy + y * self.scale + self.scale // 2, ox + x * self.scale + self.scale // 2

    @property
    def panel_top(self) -> int:
        """Row where the prediction panel starts."""
        return STRIP + self.sensor_height * self.scale

    def bar(self, c: int) -> tuple[int, int, int, int]:
        """``(left, top, right, bottom)`` of the full-height bar of class ``c``."""
        slot = (self.width - 20) / self.classes
        left = int(10 + c * slot + slot * 0.15)
        right = max(int(10 + (c + 1) * slot - slot * 0.15), left + 1)
        top = self.panel_top + 30
        return left, top, right, top + PANEL - 30 - 22


def background(layout: Layout) -> np.ndarray:
    """The canvas without events or text: margin, and the sensor's area."""
    canvas = np.empty((layout.height, layout.width, 3), dtype=np.uint8)
    canvas[:] = MARGIN
    oy, ox = layout.origin
    canvas[oy : oy + layout.sensor_height * layout.scale, ox : ox + layout.sensor_width * layout.scale] = SENSOR
    return canvas


def _text(canvas: np.ndarray, text: str, x: int, y: int, colour: tuple[int, int, int], size: float = 0.45) -> None:
    cv2.putText(canvas, text, (x, y), FONT, size, colour, 1, cv2.LINE_AA)


def rate_text(events_per_s: float) -> str:
    """``12.3 k ev/s``: an event rate in the unit that suits it."""
    for unit, div in (("M", 1e6), ("k", 1e3)):
        if events_per_s >= div:
            return f"{events_per_s / div:.1f} {unit} ev/s"
    return f"{events_per_s:.0f} ev/s"


def draw_strip(canvas: np.ndarray, t_s: float, decimals: int, speed: float, events_per_s: float) -> None:
    """The time strip: recording time (s from the start), playback speed and the event rate."""
    _text(canvas, f"t {t_s:.{decimals}f} s", 8, 18, TEXT)
    right = f"x{speed:g}  {rate_text(events_per_s)}"
    (w, _h), _ = cv2.getTextSize(right, FONT, 0.45, 1)
    _text(canvas, right, canvas.shape[1] - w - 8, 18, DIM)


def draw_predictions(canvas: np.ndarray, layout: Layout, shown: Shown) -> None:
    """The prediction panel: the current prediction and last decision in words, a bar per class's score
    (the predicted class's in orange) and the class numbers (the true class's in green)."""
    top = layout.panel_top
    said = f"prediction {shown.label}" if shown.label >= 0 else "prediction -"
    _text(canvas, said, 8, top + 20, TEXT, 0.5)
    if shown.decision >= 0:
        verdict = "" if shown.decision_truth < 0 else (" right" if shown.decision == shown.decision_truth else " wrong")
        colour = WRONG if verdict == " wrong" else TRUTH if verdict else DIM
        truth = f" (truth {shown.decision_truth})" if shown.decision_truth >= 0 else ""
        line = f"decision {shown.decision}{truth}{verdict}"
        (w, _h), _ = cv2.getTextSize(line, FONT, 0.45, 1)
        _text(canvas, line, layout.width - w - 8, top + 20, colour)
    for c in range(layout.classes):
        left, bar_top, right, bottom = layout.bar(c)
        level = float(np.clip(shown.scores[c], 0.0, 1.0)) if c < shown.scores.shape[0] else 0.0
        filled = bottom - round(level * (bottom - bar_top))
        cv2.rectangle(canvas, (left, bar_top), (right, bottom), (36, 36, 36), -1)
        if filled < bottom:
            cv2.rectangle(canvas, (left, filled), (right, bottom), BAR_PREDICTED if c == shown.label else BAR, -1)
        colour = TRUTH if c == shown.truth else DIM
        (w, _h), _ = cv2.getTextSize(str(c), FONT, 0.4, 1)
        _text(canvas, str(c), (left + right - w) // 2, bottom + 16, colour, 0.4)


def draw_caption(canvas: np.ndarray, caption: str) -> None:
    """A caption line at the bottom (a run's accuracies)."""
    _text(canvas, caption, 8, canvas.shape[0] - 6, DIM, 0.4)
