"""The one vocabulary of refusals: why a frame got no score, the same words at every door (the node's
quality counters, bag-eval's ``frames.csv``, ``hirqa score``'s rows); the message is the detail."""

from __future__ import annotations

from hirqa_ros.limits import TooLarge

#: the input cannot become an RGB frame: corrupt or truncated bytes, an unsupported encoding, a short
#: buffer, and empty input (a 0-byte file, a message with no data, a zero-size image)
DECODE_ERROR = "decode_error"
#: the declared width x height is above the decoding limit (refused before any pixel is decoded)
TOO_LARGE = "too_large"
#: the shorter side is below ``min_image_side``
TOO_SMALL = "too_small"
#: the backend failed on the frame or returned a non-finite score
INFERENCE_ERROR = "inference_error"
#: every reason a frame may get no score, in the order of the pipeline
REASONS = (DECODE_ERROR, TOO_LARGE, TOO_SMALL, INFERENCE_ERROR)


def decode_reason(exc: BaseException) -> str:
    """The refusal reason of an exception raised while reading or decoding a frame."""
    return TOO_LARGE if isinstance(exc, TooLarge) else DECODE_ERROR
