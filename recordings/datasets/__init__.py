"""Datasets stored as many files: N-MNIST folders (``nmnist``) and the MNIST IDX files (``mnist``)."""
