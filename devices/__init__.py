"""devices of spikestream."""
