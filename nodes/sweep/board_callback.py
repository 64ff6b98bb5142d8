"""The Tune callback that keeps a sweep's page (``nodes.sweep.board``) up to date, on the driver, as Tune
hears from the trials. A module of its own because it needs Ray at import; a sweep without a page never
imports it.

Tune saves its callbacks with the experiment's state; the page's state (a lock, a server) cannot be
saved and must not be: a saved callback comes back without a page, and does nothing.
"""

from __future__ import annotations

from typing import Any

from ray import tune
from typing_extensions import override

from .board import SweepBoard


class BoardCallback(tune.Callback):
    """Tells ``board`` of every trial's start, reports and end."""

    def __init__(self, board: SweepBoard | None) -> None:
        self.board = board

    @override
    def __getstate__(self) -> dict[str, Any]:
        return {"board": None}

    @override
    def on_trial_start(self, iteration: int, trials: list[Any], trial: Any, **info: Any) -> None:
        if self.board is not None:
            self.board.started(str(trial.trial_id), dict(trial.config))

    @override
    def on_trial_result(
        self, iteration: int, trials: list[Any], trial: Any, result: dict[Any, Any], **info: Any
    ) -> None:
        if self.board is not None:
            self.board.reported(str(trial.trial_id), dict(trial.config), result)

    @override
    def on_trial_complete(self, iteration: int, trials: list[Any], trial: Any, **info: Any) -> None:
        if self.board is not None:
            self.board.ended_trial(str(trial.trial_id))

    @override
    def on_trial_error(self, iteration: int, trials: list[Any], trial: Any, **info: Any) -> None:
        if self.board is not None:
            self.board.ended_trial(str(trial.trial_id), error="failed (the table says why at the end)")
