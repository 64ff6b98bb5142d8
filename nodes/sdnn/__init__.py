"""Kheradpisheh et al.'s deep STDP network (SDNN, 2018): one wave of first spikes per image, layer-by-layer
learning, global max pooling features (``type = "sdnn"``; docs/sdnn.md)."""
