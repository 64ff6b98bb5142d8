"""Sources: the stages that start a stream.

``phased`` is the engine of labelled dataset streams (train/test phases, no resets) and ``pacing`` paces
a stream by its own timestamps. Each dataset source has its module: ``mnist`` (rate-encoded images),
``saccades`` (digits in simulated saccades), ``replay`` (an N-MNIST folder or a recording file).
``playback`` plays a recorded message log and ``predictions`` hand-made prediction streams.
``paced_file`` is the file playback that ``replay`` and the simulated camera (``devices.simulated``)
share; ``synthesis`` turns images into event streams.
"""
