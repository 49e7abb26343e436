"""Offline training of HiRQA / HiRQA-S (imported as hirqa_ros.training), a pipeline in four stages:
``data`` (photos, distortion ladders) -> ``fit`` (the trainer) -> ``heads`` (heads on the frozen
embedding) -> ``release`` (gate, model directory, card); reached through ``hirqa prepare-data``,
``hirqa train``, ``hirqa gpu-run``, ``hirqa heads`` and ``hirqa release``."""
