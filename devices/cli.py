"""``spikestream cameras``: list the iniVation cameras this machine can see."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from devices.camera import NO_CAMERA_HELP, descriptor_name, discover
from pipeline.errors import DeviceError


def _resolution(desc: Any) -> str:
    """The event resolution, read by opening the camera briefly (it then streams for a moment)."""
    import dv_processing as dv

    try:
        cam = dv.io.camera.open(desc)
    except RuntimeError as exc:
        return f"cannot open: {str(exc).split(' [')[0]}"
    res = cam.getEventResolution()
    del cam
    return f"{res[0]}x{res[1]}" if res is not None else "no event stream"


def cmd_cameras(args: argparse.Namespace) -> int:
    """``spikestream cameras``: list the connected iniVation cameras, one line each."""
    try:
        found = discover()
    except DeviceError as exc:
        print(f"spikestream: {exc}", file=sys.stderr)
        return 1
    if not found:
        print(f"no iniVation camera connected; {NO_CAMERA_HELP}", file=sys.stderr)
        return 1
    print(f"{'name':<28} {'model':<16} {'serial':<12} {'usb':<8} {'firmware':<9} resolution")
    for d in found:
        model = getattr(d.cameraModel, "name", str(d.cameraModel))
        res = _resolution(d) if args.resolution else "(use --resolution)"
        usb = f"{d.busNumber}:{d.devAddress}"
        print(f"{descriptor_name(d):<28} {model:<16} {d.serialNumber:<12} {usb:<8} {d.firmwareVersion!s:<9} {res}")
    return 0


def register(subparsers: Any) -> None:
    """Add ``spikestream cameras`` to the CLI (entry point of ``spikestream.commands``)."""
    p = subparsers.add_parser("cameras", help="list connected iniVation event cameras")
    p.add_argument(
        "--resolution",
        action="store_true",
        help="open each camera briefly to read its sensor size (fails for a camera in use)",
    )
    p.set_defaults(func=cmd_cameras)
