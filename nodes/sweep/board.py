"""A live page for a running sweep (``spikestream sweep SWEEP.toml --dashboard``): every trial's parameters,
state and learning curve as Tune reports them, the metric against each parameter, and at the end the table
the sweep writes, its best configuration and the test figure.

Tune calls ``BoardCallback`` (``nodes.sweep.board_callback``) on the driver for each trial's start, report
and end; the page polls
``GET /api/sweep`` once a second. The page only reads (a sweep takes no commands), and its server runs in
a thread of its own, so a slow or vanished browser costs the trials nothing: they run in Ray's workers.
After the sweep the page keeps its last state until Ctrl-C.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

from aiohttp import web
from typing_extensions import override

from nodes.dashboard.server import STATIC as DASHBOARD_STATIC
from nodes.dashboard.site import ThreadedSite

from .report import Row
from .trial import OUT, SEED, SWEEP_FILE

STATIC = Path(__file__).resolve().parent / "static"
#: Curve points kept per trial (the oldest are thinned out beyond).
MAX_POINTS = 400
RUNNING, ENDED = "running", "ended"


class SweepBoard:
    """What the page shows. Tune's callback thread writes it, the server's thread reads it."""

    def __init__(self, name: str, metric: str, keys: list[str]) -> None:
        self.name = name
        self.metric = metric
        self.keys = keys
        self._lock = threading.Lock()
        self._trials: dict[str, dict[str, Any]] = {}
        self._t0 = time.monotonic()
        self.ended = False
        self._best: dict[str, Any] | None = None
        self._test: float | None = None

    def started(self, trial_id: str, config: dict[str, Any]) -> None:
        """A trial has started with ``config`` (its parameters and seed)."""
        params = {k: v for k, v in config.items() if k not in (SWEEP_FILE, SEED, OUT)}
        with self._lock:
            self._trials.setdefault(trial_id, {"params": params, "seed": config.get(SEED), "curve": []})
            self._trials[trial_id] |= {"status": RUNNING, "figures": {}}

    def reported(self, trial_id: str, config: dict[str, Any], result: dict[str, Any]) -> None:
        """A trial reported ``result``: a point of its curve, or (``final``) its figures."""
        if trial_id not in self._trials:  # (a trial restored by --resume was never started here)
            self.started(trial_id, config)
        with self._lock:
            trial = self._trials[trial_id]
            if result.get("final"):
                keep = (self.metric, "train_accuracy", "window_accuracy", "events_per_s", "trial_wall_s")
                trial["figures"] = {k: result[k] for k in keep if isinstance(result.get(k), int | float)}
            elif isinstance(result.get("samples"), int | float) and isinstance(result.get("window_accuracy"), float):
                curve = trial["curve"]
                curve.append((result["samples"], result["window_accuracy"]))
                if len(curve) > MAX_POINTS:
                    del curve[1::2]  # every other point: the curve's shape stays, its size bounded

    def ended_trial(self, trial_id: str, error: str | None = None) -> None:
        """A trial has ended (done, or stopped early: the table says which at the end), or failed."""
        with self._lock:
            if trial_id in self._trials:
                self._trials[trial_id] |= {"status": "error" if error else ENDED, "error": error}

    def finish(self, rows: list[Row], best: Row | None, test: dict[str, Any] | None) -> None:
        """The sweep's table as written: every row's final state and figures, the best row, the test figure."""
        with self._lock:
            for r in rows:
                trial = self._trials.setdefault(r.trial_id, {"curve": list(r.curve)})
                trial |= {"params": r.params, "seed": r.seed, "status": r.status, "error": r.error}
                trial["figures"] = {self.metric: r.metric} | {
                    k: r.figures[k] for k in ("events_per_s", "trial_wall_s") if k in r.figures
                }
            self._best = None if best is None else {"trial_id": best.trial_id, "metric": best.metric}
            self._test = None if test is None else test.get("test_accuracy")
            self.ended = True

    def status(self) -> dict[str, Any]:
        """Everything the page draws, as JSON."""
        with self._lock:
            return {
                "name": self.name,
                "metric": self.metric,
                "keys": self.keys,
                "ended": self.ended,
                "elapsed_s": round(time.monotonic() - self._t0, 1),
                "best": self._best,
                "test_accuracy": self._test,
                "trials": {
                    t: {**v, "curve": [list(p) for p in v["curve"]], "figures": dict(v.get("figures", {}))}
                    for t, v in self._trials.items()
                },
            }


class BoardServer(ThreadedSite):
    """Serves ``board`` on ``host:port`` from a thread; ``start`` returns once it listens (or raises
    ``DashboardError`` naming the address), ``stop`` closes it."""

    def __init__(self, board: SweepBoard, host: str, port: int) -> None:
        super().__init__(host, port, "sweep dashboard")
        self.board = board

    @override
    def application(self) -> web.Application:
        async def status(_request: web.Request) -> web.StreamResponse:
            return web.json_response(self.board.status())

        def serve(path: Path) -> Any:
            async def handler(_request: web.Request) -> web.StreamResponse:
                return web.FileResponse(path)

            return handler

        app = web.Application()
        app.router.add_get("/", serve(STATIC / "sweep.html"))
        app.router.add_get("/sweep.js", serve(STATIC / "sweep.js"))
        app.router.add_get("/style.css", serve(DASHBOARD_STATIC / "style.css"))
        app.router.add_get("/api/sweep", status)
        return app
