"""``spikestream render RECORDING OUT``: a recording drawn as an MP4 or GIF video."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import Any

from pipeline.errors import SpikestreamError

log = logging.getLogger("spikestream.render")


def cmd_render(args: argparse.Namespace) -> int:
    """Render ``args.recording`` to ``args.out`` and print what was written."""
    from pipeline.progress import Progress
    from recordings.cli import _resolve
    from recordings.video.predictions import load_predictions, results_caption
    from recordings.video.render import RenderParams, open_source, render

    try:
        params = RenderParams(
            speed=args.speed,
            fps=args.fps,
            window_ms=args.window_ms,
            start_s=args.start,
            duration_s=args.duration,
            scale=args.scale,
        )
    except ValueError as exc:
        raise SpikestreamError(str(exc)) from None
    if args.state and args.predictions:
        msg = "give --state (run the saved network) or --predictions (predictions already made), not both"
        raise SpikestreamError(msg)
    path = _resolve(args.recording)
    out = Path(args.out)
    if out.exists() and not args.force:
        msg = f"{out}: already exists (remove it, or pass --force to replace it)"
        raise SpikestreamError(msg)
    source = open_source(path)
    truth = args.truth
    if truth is None and source.format == "nmnist" and path.parent.name.isdigit():
        truth = int(path.parent.name)  # an N-MNIST sample: its folder is its class (Test/7/00001.bin)
    track = load_predictions(args.predictions) if args.predictions else None
    if args.state:
        from recordings.video.network import predict

        track = predict(path, Path(args.state), args.config, truth=truth, log=log)
    caption = results_caption(args.results) if args.results else None
    progress = Progress("render", None, log)
    result = render(source, out, params, predictions=track, caption=caption, truth=truth, progress=progress)
    progress.close()
    print(
        f"{out}: {result['frames']:,} frames ({result['video_s']:.1f} s at {params.fps:g} frames/s), "
        f"{result['width']}x{result['height']} px, {result['events_drawn']:,} events drawn"
        + (f", {result['predictions']:,} predictions" if result["predictions"] else "")
        + f"; rendered at {result['frames_per_s']:.0f} frames/s"
    )
    if result["truncated_at"] is not None:
        print(f"  {path}: cut short at byte {result['truncated_at']}; drew what it holds up to there")
    return 0


def register_render(sub: Any) -> None:
    """Add ``spikestream render`` to the CLI's sub-commands."""
    p = sub.add_parser(
        "render",
        help="draw a recording's events (and predictions) as an MP4 or GIF video",
        description="Draw the ON/OFF events of a recording (any event file, or a message log) as a video, "
        "with the time and event rate; with --predictions or --state, the classifier's prediction and every "
        "class's score as bars.",
    )
    p.add_argument("recording", help="event file or message log (relative paths also resolve against SPIKESTREAM_DATA)")
    p.add_argument("out", help="the video: NAME.mp4 or NAME.gif")
    p.add_argument("--speed", type=float, default=1.0, help="playback speed: recording s per video s (default 1)")
    p.add_argument("--fps", type=float, default=30.0, help="video frames per second (default 30)")
    p.add_argument(
        "--window-ms", type=float, default=0.0, help="recording ms each frame shows (default: one frame, speed/fps)"
    )
    p.add_argument("--start", type=float, default=0.0, metavar="S", help="start S seconds after the first event")
    p.add_argument("--duration", type=float, default=0.0, metavar="S", help="render S seconds of the recording")
    p.add_argument("--scale", type=int, default=0, help="screen pixels per sensor pixel (default: 320 px wide)")
    p.add_argument(
        "--predictions",
        metavar="FILE",
        help="draw the predictions of a message log ('record' sink) or a 'jsonl' sink's file",
    )
    p.add_argument("--results", metavar="FILE", help="a run's --results document: its accuracies as a caption")
    p.add_argument("--state", metavar="DIR", help="run the network saved in this checkpoint folder over the recording")
    p.add_argument(
        "--config",
        default="configs/nmnist.toml",
        help="the graph the --state folder was saved by (default configs/nmnist.toml)",
    )
    p.add_argument(
        "--truth", type=int, metavar="CLASS", help="the class the recording shows (N-MNIST samples: their folder)"
    )
    p.add_argument("--force", action="store_true", help="replace OUT if it exists")
    p.set_defaults(func=cmd_render)
