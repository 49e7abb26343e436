"""Training data: the pristine photo set (``prepare``), reading it (``photos``), the distortion-ladder
samplers on the host and on the training device (``ladders``, ``device_ladders``), the alignment
prompts (``prompts``) and a profiler of the device sampler (``profile``)."""
