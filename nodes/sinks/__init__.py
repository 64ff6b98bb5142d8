"""Sinks: stages that act on predictions (ZeroMQ, JSON-lines files, the console) or keep a message log.

The JSON form every prediction sink emits is described in ``nodes.sinks.predictions``; the MQTT sink
lives with the rest of the MQTT code in ``nodes.mqtt``.
"""
