"""Readouts over a recorded top-layer stream: accuracy of each on the same features, without the network.

    python benchmarks/readouts_on_log.py LOG '{"readout": "supervised", "threshold": 2.0, "eta": 0.02}' ...

``LOG`` is a message log kept by a ``record`` sink behind the ``stdp`` node (spikes, labels, the phase
controls). Each JSON argument builds one readout: ``readout`` = "supervised", "delta" or "eprop", the rest
its parameters (``SupervisedParams``, ``DeltaParams``, ``EpropRule``; "seed" for eprop's initial weights).
It sees the log's spikes and labels as the classifier node would, freezes where the phases froze it, and
prints the accuracy of its decisions on evaluation segments (the test or validation phase) and on training
segments (online, prequential). The features do not depend on the readout, so this gives the figure a full
run with that readout gives (checked: the supervised readout reproduces ``configs/nmnist.toml``'s 90.0 %).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from nodes.classifier import (
    DeltaParams,
    DeltaReadout,
    EpropParams,
    EpropReadout,
    EpropRule,
    SupervisedClassifier,
    SupervisedParams,
)
from nodes.classifier.labelled import LabelledStream
from pipeline.events import LABEL_DTYPE, SPIKE_DTYPE
from pipeline.message import FREEZE, LABELS, RELABEL, SPIKES, UNFREEZE, applies_to
from recordings.messages import read_messages

Chunk = tuple[np.ndarray, np.ndarray, str | None]


def load(path: Path) -> list[Chunk]:
    """The log as chunks between the classifier's phase controls: (labels, spikes, control or None).

    Feeding a chunk's labels, then its spikes, in one call each gives what any batching gives."""
    chunks: list[Chunk] = []
    labs: list[np.ndarray] = []
    spks: list[np.ndarray] = []

    def close(command: str | None) -> None:
        lab = np.concatenate(labs) if labs else np.zeros(0, LABEL_DTYPE)
        spk = np.concatenate(spks) if spks else np.zeros(0, SPIKE_DTYPE)
        chunks.append((lab, spk, command))
        labs.clear()
        spks.clear()

    for m in read_messages(path):
        if m.kind == LABELS and m.data is not None:
            labs.append(m.data)
        elif m.kind == SPIKES and m.data is not None:
            spks.append(m.data)
        elif m.command in (FREEZE, UNFREEZE, RELABEL) and applies_to(m, "classifier"):
            close(m.command)
    close(None)
    return chunks


def make(spec: dict[str, Any], n_classes: int, n_inputs: int) -> LabelledStream:
    """One readout from its JSON description."""
    kw = dict(spec)
    kind = kw.pop("readout")
    if kind == "supervised":
        return SupervisedClassifier(SupervisedParams(n_classes=n_classes, n_inputs=n_inputs, **kw))
    if kind == "delta":
        return DeltaReadout(DeltaParams(n_classes=n_classes, n_inputs=n_inputs, **kw))
    if kind == "eprop":
        seed = int(kw.pop("seed", 0))
        return EpropReadout(EpropParams(n_classes=n_classes, n_inputs=n_inputs, seed=seed, rule=EpropRule(**kw)))
    msg = f"readout must be supervised, delta or eprop, got {kind!r}"
    raise ValueError(msg)


def run(chunks: list[Chunk], clf: LabelledStream, validation: int = 0) -> dict[str, float]:
    """Feed the chunks; accuracy on evaluation and on training decisions, and input spikes per second.

    ``validation``: the first that many evaluation decisions are a validation phase (held-out training
    data, for choosing settings), reported apart from the rest (the test phase)."""
    outs = []
    n = 0
    start = time.perf_counter()
    for labs, spks, command in chunks:
        clf.add_labels(labs)
        outs.append(clf.process(spks))
        n += len(spks)
        if command is not None:
            outs.append(clf.flush())
            if command == FREEZE:
                clf.freeze()
            elif command == UNFREEZE:
                clf.unfreeze()
    outs.append(clf.flush())
    elapsed = time.perf_counter() - start
    out = np.concatenate(outs)
    dec = out[(out["decision"] == 1) & (out["truth"] >= 0)]
    ev, tr = dec[dec["train"] == 0], dec[dec["train"] == 1]
    val, ev = ev[:validation], ev[validation:]
    return {
        "validation": float(np.mean(val["label"] == val["truth"])) if len(val) else float("nan"),
        "validated": float(len(val)),
        "evaluation": float(np.mean(ev["label"] == ev["truth"])) if len(ev) else float("nan"),
        "evaluated": float(len(ev)),
        "online": float(np.mean(tr["label"] == tr["truth"])) if len(tr) else float("nan"),
        "spikes_per_s": n / elapsed,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("log", type=Path)
    ap.add_argument("readouts", nargs="+", help="JSON objects, one per readout")
    ap.add_argument("--classes", type=int, default=10)
    ap.add_argument("--inputs", type=int, default=1024)
    ap.add_argument(
        "--validation", type=int, default=0, help="the first N evaluation decisions are validation, reported apart"
    )
    args = ap.parse_args()
    chunks = load(args.log)
    for text in args.readouts:
        r = run(chunks, make(json.loads(text), args.classes, args.inputs), args.validation)
        held = f"validation {100 * r['validation']:.2f} % of {r['validated']:.0f}, " if args.validation else ""
        print(
            f"{text}: {held}evaluation {100 * r['evaluation']:.2f} % of {r['evaluated']:.0f}, "
            f"online {100 * r['online']:.2f} %, {r['spikes_per_s'] / 1e3:.0f} k spikes/s"
        )


if __name__ == "__main__":
    main()
