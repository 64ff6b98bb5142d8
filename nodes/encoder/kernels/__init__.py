"""Numba kernels of the encoders, one module per family: ``delta`` (frames → events by level
crossing), ``time_sort`` (the radix sort the delta kernels end with) and ``events`` (the event transform).
Only ``@njit`` functions over plain arrays and scalars, and their constants, live here."""

#: "No event yet" in the per-pixel last-timestamp maps (far in the past, safe to subtract from).
NO_EVENT_T = -(2**62)
