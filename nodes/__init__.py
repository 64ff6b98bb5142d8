"""nodes of spikestream."""
