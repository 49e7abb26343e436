"""Fitting the network: configuration, objective (``losses``), checkpoints, the training loop
(``trainer``, which picks the host or device ladder sampler from ``train.sampler``) and the prepared
GPU run (``gpu``: carryable init, weights packed in parts)."""
