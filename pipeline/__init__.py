"""spikestream runtime: events and messages, the wire format, ZeroMQ links, nodes, graphs and the CLI.

This package knows nothing about neurons or file formats; stages register themselves by type name.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("spikestream")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0+unknown"
