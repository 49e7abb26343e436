"""Group `no_content`: frames that fade to a blank picture (lens cap or dead sensor = black, blown-out
sensor = white, a grey test pattern or failed decoder = uniform grey). Level 5 is exactly uniform.

Not drawn by default (training sampler, compositions, evaluation): name them explicitly, e.g. for
the no-content checks of the frame pipeline.
"""
from __future__ import annotations

import torch

from .base import Degradation

FADES = (0.5, 0.8, 0.95, 0.99, 1.0)  # share of the blank colour in the frame, levels 1..5


def _fade_to(value: float):
    def op(x: torch.Tensor, amount: float, g: torch.Generator | None) -> torch.Tensor:
        return x * (1.0 - amount) + value * amount

    return op


DEGRADATIONS = [
    Degradation("black_frame", "no_content", FADES, "fade to black (lens cap, dead sensor)", "blank_share",
                _fade_to(0.0)),
    Degradation("white_frame", "no_content", FADES, "fade to white (blown-out sensor)", "blank_share",
                _fade_to(1.0)),
    Degradation("grey_frame", "no_content", FADES, "fade to uniform mid grey (test pattern, failed decoder)",
                "blank_share", _fade_to(128 / 255)),
]
