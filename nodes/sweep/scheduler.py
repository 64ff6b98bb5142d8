"""ASHA that writes down the trials it stops: a trial that ended without its final report was stopped by
the scheduler only if it is in that list; otherwise Ctrl-C cut it short and ``--resume`` runs it again.
(Tune marks both kinds terminated.) Imports Ray: loaded only when a sweep runs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ray.tune.schedulers import AsyncHyperBandScheduler, TrialScheduler
from typing_extensions import override

#: The file, in a sweep's folder, of the trials the scheduler stopped.
STOPPED_FILE = "stopped.json"


def stopped_trials(out: Path) -> set[str]:
    """The ids of the trials the scheduler of the sweep in ``out`` stopped."""
    try:
        return set(json.loads((out / STOPPED_FILE).read_text()))
    except FileNotFoundError:
        return set()


class RecordingAsha(AsyncHyperBandScheduler):
    """``ASHAScheduler`` that appends every trial it stops to ``out/stopped.json``."""

    def __init__(self, out: Path, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.out = out

    @override
    def on_trial_result(self, tune_controller: Any, trial: Any, result: dict[str, Any]) -> str:
        action: str = super().on_trial_result(tune_controller, trial, result)
        if action == TrialScheduler.STOP:
            stopped = stopped_trials(self.out) | {str(trial.trial_id)}
            (self.out / STOPPED_FILE).write_text(json.dumps(sorted(stopped)) + "\n")
        return action
