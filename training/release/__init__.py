"""From a trained network to a shipped model directory: one gate (``gate``), one producer of the
model directory (``model_dir``), the card's contents (``cards``), one metrics table (``tables``),
and the three kinds of release: a training run, a weight-space blend, refitted heads."""
