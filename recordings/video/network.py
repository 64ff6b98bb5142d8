"""Predictions of a saved network over a recording (``render --state``): the graph that saved the state,
cut down to what lies between its source and its classifier, run in this process over the recording.

The graph is built from the one the state was saved by (``--config``): its source is replaced by a
``playback`` of a message log holding a ``freeze`` command and then the recording's events, the nodes
that do not lead to the classifier (evaluation, MQTT, files ...) are left out, and a ``record`` sink keeps
the classifier's predictions. The state folder is copied first: the run restores from, and saves into,
the copy, so the folder given is never written. The ``freeze`` reaches every node before the first event,
so the network predicts with exactly the weights it was saved with, learning nothing on the way.

The recording is one labelled segment for evaluation (``train = 0``: the classifier never learns from
it), labelled with its class where known, else unknown (-1): a segment starts with the classifier's
integration reset, as every sample of a test phase does, so what it says is about this recording, not
the ones it saw before; and its end brings the classifier's final decision.

A saved network expects its stream's time to go on from where it stopped (a classifier refuses a spike
earlier than the last it took). The recording is therefore played shifted to start after every time the
checkpoints hold (``resume_time``: a bound, not an exact reading of each node's clock: a later start is
harmless, the network being blind to time offsets), and its predictions are shifted back.
"""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.checkpoint import GENERATION_KEY, load_state, save_generation
from pipeline.config import data_path, load_graph, parse_graph, where_looked
from pipeline.errors import ConfigError, SpikestreamError
from pipeline.events import LABEL_DTYPE, copy_records
from pipeline.message import FREEZE, control_message, events_message, labels_message
from pipeline.runner import run_graph
from recordings.messages import MessageLogWriter
from recordings.recording import rebatch
from recordings.video.predictions import PredictionTrack, from_message_log
from recordings.video.render import open_source

SOURCE = "render-source"
SINK = "render-predictions"


def reduced_graph(raw: dict[str, Any], events_log: Path, predictions_log: Path, config: str) -> dict[str, Any]:
    """The graph ``raw`` from its source to its classifier, fed by a playback of ``events_log`` and ending
    in a ``record`` sink writing ``predictions_log`` (a raw graph document, as the TOML file reads)."""
    nodes: dict[str, dict[str, Any]] = raw.get("nodes", {})
    links = [tuple(s.strip() for s in link.split("->")) for link in raw.get("links", [])]
    sources = [n for n in nodes if not any(b == n for _a, b in links)]
    classifiers = [n for n, spec in nodes.items() if spec.get("type") == "classifier"]
    if len(sources) != 1 or len(classifiers) != 1:
        msg = (
            f"{config}: --state needs a graph with one source and one classifier, to run the saved network "
            f"between them; this one has sources {sources or 'none'} and classifiers {classifiers or 'none'}"
        )
        raise ConfigError(msg)
    source, classifier = sources[0], classifiers[0]
    leads_to = {classifier}  # the nodes from which the classifier is reached
    changed = True
    while changed:
        changed = False
        for a, b in links:
            if b in leads_to and a not in leads_to:
                leads_to.add(a)
                changed = True
    if source not in leads_to:
        msg = f"{config}: the classifier {classifier!r} is not fed by the source {source!r}"
        raise ConfigError(msg)
    kept = [n for n in nodes if n in leads_to and n != source]
    rename = {source: SOURCE}
    new_links = [f"{rename.get(a, a)} -> {b}" for a, b in links if a in leads_to and b in leads_to]
    new_links.append(f"{classifier} -> {SINK}")
    new_nodes: dict[str, dict[str, Any]] = {SOURCE: {"type": "playback", "path": str(events_log)}}
    for n in kept:
        spec = dict(nodes[n])
        if n == classifier:
            spec["running"] = True  # a prediction on every classifier spike, not only per labelled segment
        new_nodes[n] = spec
    new_nodes[SINK] = {"type": "record", "path": str(predictions_log), "kinds": ["predictions"]}
    return {
        "name": f"{raw.get('name', 'graph')}-render",
        "transport": "inproc",
        "links": new_links,
        "nodes": new_nodes,
        "checkpoint_s": 0,
        "log_every_s": 0,
    }


#: Integers above this in a checkpoint are sentinels or hashes, not times.
_TIME_LIMIT = 1 << 60


def resume_time(files: list[Path]) -> int:
    """A time (µs) after every time the checkpoint ``files`` hold: one more than the largest integer in
    them, counters, sentinels and hashes left out."""
    latest = 0
    for path in files:
        for key, value in load_state(path).items():
            if "counters" in key or key.startswith("__") or value.dtype.kind not in "iu" or not value.size:
                continue
            values = value[(value >= 0) & (value < _TIME_LIMIT)]
            if values.size:
                latest = max(latest, int(values.max()))
    return latest + 1


def write_events_log(recording: Path, out: Path, not_before: int, truth: int) -> tuple[int, int]:
    """The recording's events as a message log that starts with a ``freeze`` and a segment label ``truth``
    (evaluation only), shifted to start at ``not_before`` at the earliest; returns ``(events written, the
    shift in µs)``."""
    source = open_source(recording)
    writer = MessageLogWriter(out)
    n = shift = 0
    try:
        writer.write(control_message(FREEZE))
        for k, batch in enumerate(rebatch(source.batches, 4096)):
            if k == 0 and batch.size:
                shift = max(0, not_before - int(batch["t"][0]))
                label = np.zeros(1, dtype=LABEL_DTYPE)
                label["t"], label["label"], label["train"] = int(batch["t"][0]) + shift, truth, 0
                writer.write(labels_message(label))
            shifted = copy_records(batch)
            shifted["t"] += shift
            writer.write(events_message(shifted, source.width, source.height))
            n += int(batch.shape[0])
    finally:
        writer.close()
    return n, shift


def predict(
    recording: Path, state: Path, config: str, *, truth: int | None = None, log: logging.Logger
) -> PredictionTrack:
    """Run the network saved in ``state`` (by the graph ``config``) over ``recording`` (showing the class
    ``truth``, where known); its predictions."""
    if not state.is_dir():
        msg = f"--state {state}: not a folder of checkpoints (docs/checkpoints.md)"
        raise SpikestreamError(msg)
    config_path = data_path(config) if not Path(config).exists() else Path(config)
    if not config_path.exists():
        msg = f"--config {config}: no such graph file (looked for {where_looked(config)})"
        raise ConfigError(msg)
    graph = load_graph(config_path)
    with tempfile.TemporaryDirectory(prefix="spikestream-render-") as tmp:
        work = Path(tmp)
        events_log, predictions_log = work / "events.log", work / "predictions.log"
        raw = reduced_graph(dict(graph.raw), events_log, predictions_log, str(config_path))
        copy = work / "state"
        copy.mkdir()
        saved_files = []
        for name in raw["nodes"]:
            saved = state / f"{name}.npz"
            if name in (SOURCE, SINK):
                kept_state: dict[str, Any] = {}  # nothing to restore: they start afresh
            elif saved.exists():
                kept_state = load_state(saved)  # the newest generation (NODE.npz links to it)
                kept_state.pop(GENERATION_KEY, None)
                saved_files.append(saved)
            else:
                msg = f"--state {state}: holds no {saved.name}: was it saved by {config_path}? (--config)"
                raise SpikestreamError(msg)
            # one complete generation of every node: the cut-down graph restores it as a consistent cut
            save_generation(copy, name, 1, kept_state)
        n, shift = write_events_log(recording, events_log, resume_time(saved_files), -1 if truth is None else truth)
        log.info("render: running the network saved in %s over %s (%d events)", state, recording, n)
        results = run_graph(parse_graph(raw, f"{config_path} (cut down for render --state)"), state_dir=str(copy))
        if results.get("errors"):
            name, why = next(iter(results["errors"].items()))
            msg = f"running the saved network failed: {name}: {why}"
            raise SpikestreamError(msg)
        track = from_message_log(predictions_log, shift=-shift)
    if track is None:
        msg = (
            f"the network saved in {state} made no prediction over {recording} (its classifier never fired: "
            "is the recording the kind of input the graph was trained on?)"
        )
        raise SpikestreamError(msg)
    return track
