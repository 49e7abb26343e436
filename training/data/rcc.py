"""Read Qt binary resource files (``.rcc``, format versions 1-3): list the files they hold and their bytes,
zlib- or zstd-compressed entries inflated (gcompris-qt-data ships its photos this way)."""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

MAGIC = b"qres"
COMPRESSED, DIRECTORY, COMPRESSED_ZSTD = 0x01, 0x02, 0x04  # node flags (Qt's rcc.cpp / qresource.cpp)


class RccError(ValueError):
    """The bytes are not a readable Qt resource file."""


@dataclass(frozen=True)
class RccEntry:
    path: str  # "/" + the resource path, e.g. "/gcompris/src/activities/x/resource/y.webp"
    data: bytes  # the file's bytes, decompressed
    compression: str  # "none", "zlib" or "zstd"


def _u16(buf: bytes, at: int) -> int:
    return struct.unpack_from(">H", buf, at)[0]


def _u32(buf: bytes, at: int) -> int:
    return struct.unpack_from(">I", buf, at)[0]


class RccReader:
    """The tree of one ``.rcc`` file. Header: ``qres``, version, tree, data and names offsets (big-endian
    uint32), then (version >= 3) overall flags. A tree node is name offset (4), flags (2), then for a
    directory child count (4) and first child index (4), for a file territory (2), language (2) and data
    offset (4); version >= 2 adds a last-modified time (8). Names: length (2), hash (4), UTF-16BE. Data:
    size (4) and the bytes; zlib entries start with their inflated size (4, Qt's ``qCompress``)."""

    def __init__(self, buf: bytes) -> None:
        if len(buf) < 20 or buf[:4] != MAGIC:
            raise RccError("not a Qt resource file (no 'qres' header)")
        self.buf = buf
        self.version, self.tree, self.data, self.names = struct.unpack_from(">IIII", buf, 4)
        if not 1 <= self.version <= 3:
            raise RccError(f"unsupported Qt resource format version {self.version}")
        if max(self.tree, self.data, self.names) >= len(buf):
            raise RccError("truncated Qt resource file (an offset points past its end)")
        self.node_size = 14 if self.version == 1 else 22

    def _name(self, offset: int) -> str:
        at = self.names + offset
        n = _u16(self.buf, at)
        return self.buf[at + 6 : at + 6 + 2 * n].decode("utf-16-be")

    def _node(self, index: int) -> tuple[str, int, int, int]:
        """(name, flags, a, b): a, b = child count and first child (directory) or 0 and data offset."""
        at = self.tree + index * self.node_size
        if at + 14 > len(self.buf):
            raise RccError(f"tree node {index} lies past the end of the file")
        name_off, flags = _u32(self.buf, at), _u16(self.buf, at + 4)
        name = "" if index == 0 else self._name(name_off)
        if flags & DIRECTORY:
            return name, flags, _u32(self.buf, at + 6), _u32(self.buf, at + 10)
        return name, flags, 0, _u32(self.buf, at + 10)

    def _payload(self, flags: int, offset: int) -> tuple[bytes, str]:
        at = self.data + offset
        size = _u32(self.buf, at)
        raw = self.buf[at + 4 : at + 4 + size]
        if len(raw) != size:
            raise RccError("truncated data entry")
        if flags & COMPRESSED_ZSTD:
            import zstandard

            return zstandard.ZstdDecompressor().decompress(raw, max_output_size=1 << 30), "zstd"
        if flags & COMPRESSED:
            return zlib.decompress(raw[4:]), "zlib"
        return raw, "none"

    def entries(self) -> Iterator[RccEntry]:
        """Every file of the tree, depth first, with its bytes."""
        stack, seen = [(0, "")], set()
        while stack:
            index, prefix = stack.pop()
            if index in seen:
                raise RccError("the resource tree has a cycle")
            seen.add(index)
            name, flags, a, b = self._node(index)
            path = f"{prefix}/{name}" if index else ""
            if flags & DIRECTORY:
                stack.extend((b + k, path) for k in reversed(range(a)))
                continue
            data, kind = self._payload(flags, b)
            yield RccEntry(path, data, kind)


def read_rcc(path: str | Path) -> list[RccEntry]:
    """Every file in the Qt resource file ``path`` (:class:`RccError` if it is not one)."""
    return list(RccReader(Path(path).read_bytes()).entries())
