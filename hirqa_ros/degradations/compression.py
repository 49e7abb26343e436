"""ARNIQA group `jpeg`: JPEG and JPEG 2000 round trips through OpenCV — the library's one CPU-only path."""
from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import cv2
import numpy as np
import torch

from .base import Degradation, rand

_JP2_MIN_SIDE = 32  # OpenJPEG's default 6 resolution levels need at least 2**5 px per side


def _codec(img: np.ndarray, ext: str, params: list[int]) -> np.ndarray:
    h, w = img.shape[:2]
    if ext == ".jp2" and min(h, w) < _JP2_MIN_SIDE:  # pad tiny images (edge replication), crop back
        img = cv2.copyMakeBorder(img, 0, max(0, _JP2_MIN_SIDE - h), 0, max(0, _JP2_MIN_SIDE - w),
                                 cv2.BORDER_REPLICATE)
    ok, buf = cv2.imencode(ext, np.ascontiguousarray(img[..., ::-1]), params)  # OpenCV wants BGR
    if not ok:
        raise RuntimeError(f"OpenCV could not encode a {w}x{h} image as {ext}")
    return cv2.imdecode(buf, cv2.IMREAD_COLOR)[:h, :w, ::-1]


def jpeg_u8(img: np.ndarray, quality: int) -> np.ndarray:
    """An HxWx3 uint8 RGB frame through one JPEG encode/decode at ``quality`` (1..100)."""
    return _codec(img, ".jpg", [cv2.IMWRITE_JPEG_QUALITY, int(quality)])


def _map_images(x: torch.Tensor, fn: Callable[[int, np.ndarray], np.ndarray]) -> torch.Tensor:
    """``fn(i, HxWx3 uint8 RGB)`` on every image on the CPU (rounded to uint8 first), back on x's device.

    Images are spread over ``torch.get_num_threads()`` threads (OpenCV releases the GIL).
    """
    arr = (x.detach().clamp(0, 1) * 255.0).round().to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()
    workers = max(1, min(len(arr), torch.get_num_threads()))
    if workers == 1:
        out = [fn(i, img) for i, img in enumerate(arr)]
    else:
        with ThreadPoolExecutor(workers) as pool:
            out = list(pool.map(fn, range(len(arr)), arr))
    return torch.from_numpy(np.stack(out)).to(x.device).permute(0, 3, 1, 2).to(x.dtype) / 255.0


def _roundtrip(x: torch.Tensor, ext: str, params: list[int]) -> torch.Tensor:
    """Encode/decode every image with the same codec settings."""
    return _map_images(x, lambda i, img: _codec(img, ext, params))


def jpeg(x: torch.Tensor, quality: float, g: torch.Generator | None) -> torch.Tensor:
    return _roundtrip(x, ".jpg", [cv2.IMWRITE_JPEG_QUALITY, int(quality)])


def jpeg2000(x: torch.Tensor, ratio: float, g: torch.Generator | None) -> torch.Tensor:
    # OpenCV's rate parameter is the target (compressed size / raw size) * 1000
    rate = max(1, round(1000.0 / ratio))
    return _roundtrip(x, ".jp2", [cv2.IMWRITE_JPEG2000_COMPRESSION_X1000, rate])


DOUBLE_PROB = 0.5  # share of jpeg_camera samples compressed twice (camera encoder, then the transport)


def jpeg_camera(x: torch.Tensor, quality: float, g: torch.Generator | None) -> torch.Tensor:
    # half of the samples were already JPEG-compressed by the camera (quality 75..95) before the
    # transport (e.g. a `compressed` image topic) re-encodes them at this level's quality
    u = rand(g, x.shape[0], 2, device=x.device).cpu().tolist()  # one transfer (the codec runs on the CPU)
    first = [round(75 + 20 * b) if a < DOUBLE_PROB else 0 for a, b in u]

    def one(i: int, img: np.ndarray) -> np.ndarray:
        if first[i]:
            img = _codec(img, ".jpg", [cv2.IMWRITE_JPEG_QUALITY, first[i]])
        return _codec(img, ".jpg", [cv2.IMWRITE_JPEG_QUALITY, int(quality)])

    return _map_images(x, one)


DEGRADATIONS = [
    Degradation("jpeg2000", "jpeg", (16, 32, 45, 120, 170),
                "JPEG 2000 round trip (OpenCV/OpenJPEG, CPU) at this compression ratio", "ratio", jpeg2000),
    Degradation("jpeg", "jpeg", (43, 36, 24, 7, 4),
                "JPEG round trip (OpenCV/libjpeg, CPU) at this quality factor", "quality", jpeg),
    Degradation("jpeg_camera", "jpeg", (80, 50, 30, 15, 5),
                "JPEG at the qualities cameras and compressed topics use; half of the samples first "
                "compressed at quality 75..95 (double compression)", "quality", jpeg_camera),
]
