"""DECOLLE-style hidden layers: LIF layers that learn online, each from its own local loss."""
