"""Offline training of HiRQA / HiRQA-S (imported as hirqa_ros.training): losses, sampler, trainer."""
