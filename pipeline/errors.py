"""The exception tree of spikestream. Every error a user can trigger is one of these."""

from __future__ import annotations


class SpikestreamError(Exception):
    """Base class of every error spikestream raises on purpose."""


class WireFormatError(SpikestreamError):
    """A message on the wire is malformed (frame count, header, payload length)."""


class RecordingError(SpikestreamError):
    """A recording cannot be read or written: unknown format, truncated or corrupt data.

    The message names the file and, where it applies, the byte offset.
    """


class ConfigError(SpikestreamError):
    """A graph or node configuration is invalid; the message names the key and the file."""


class CheckpointError(SpikestreamError):
    """A checkpoint cannot be written, read, or does not fit the configuration."""


class DeviceError(SpikestreamError):
    """A live source (camera, network stream, video) is missing, vanished or misbehaves."""


class TransportError(SpikestreamError):
    """A ZeroMQ link cannot be set up (address in use, bad key, unknown peer)."""
