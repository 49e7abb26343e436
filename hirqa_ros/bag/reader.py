"""Open rosbag2 directories/files (sqlite3, MCAP) and ROS 1 bags with `rosbags` and iterate their
messages robustly: damaged parts are reported and skipped, salvageable data is still read."""

from __future__ import annotations

import logging
import mmap
import sqlite3
import struct
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from io import BytesIO
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

#: message types scored as images -> kind
IMAGE_TYPES = {
    "sensor_msgs/msg/Image": "raw",
    "sensor_msgs/msg/CompressedImage": "compressed",
}
STORAGE_SUFFIXES = (".mcap", ".db3", ".bag")
_MCAP_MAGIC = b"\x89MCAP0\r\n"


class BagOpenError(RuntimeError):
    """Nothing at all could be read from the given bag path."""


def default_typestore(name: str = "ROS2_HUMBLE") -> Any:
    """The typestore used for bags without embedded definitions and for writing bags.

    sensor_msgs/Image, CompressedImage, std_msgs/Header and diagnostic_msgs are identical from
    Humble to Kilted, so Humble is the safe default for old sqlite3 bags.
    """
    from rosbags.typesys import Stores, get_typestore

    return get_typestore(Stores[name.upper()])


@dataclass
class TopicInfo:
    """One topic in a bag (summed over its parts)."""

    topic: str
    msgtype: str
    count: int | None = 0  # None: unknown (salvaged storage)
    qos: list = field(default_factory=list)  # rosbags Qos tuples as recorded
    msgdef: str = ""  # ros2msg/idl text when the bag embeds it
    digest: str = ""

    @property
    def kind(self) -> str | None:
        """'raw' / 'compressed' for image topics, None otherwise."""
        return IMAGE_TYPES.get(self.msgtype)


@dataclass
class RawMessage:
    topic: str
    msgtype: str
    bag_time_ns: int
    raw: bytes
    source: _Source


class _Source:
    """One readable piece of a bag (a whole bag via AnyReader, or a salvaged storage file)."""

    name: str
    is_cdr: bool = True
    typestore: Any

    def topic_infos(self) -> list[TopicInfo]:
        raise NotImplementedError

    def messages(self, topics: set[str]) -> Iterator[tuple[str, str, int, bytes]]:
        raise NotImplementedError

    def deserialize(self, raw: bytes, msgtype: str) -> Any:
        if self.is_cdr:
            return self.typestore.deserialize_cdr(raw, msgtype)
        return self.typestore.deserialize_ros1(raw, msgtype)

    def close(self) -> None:
        pass


class _AnySource(_Source):
    def __init__(self, paths: Sequence[Path], typestore: Any) -> None:
        from rosbags.highlevel import AnyReader

        self.name = ", ".join(str(p) for p in paths)
        self.paths = list(paths)
        self.reader = AnyReader(list(paths), default_typestore=typestore)
        self.reader.open()
        self.is_cdr = self.reader.is2
        self.typestore = self.reader.typestore

    def topic_infos(self) -> list[TopicInfo]:
        out = []
        for c in self.reader.connections:
            qos = list(getattr(c.ext, "offered_qos_profiles", []) or [])
            msgdef = c.msgdef.data if getattr(c.msgdef, "data", None) else ""
            out.append(TopicInfo(c.topic, c.msgtype, c.msgcount, qos, msgdef, c.digest or ""))
        return out

    def messages(self, topics: set[str]) -> Iterator[tuple[str, str, int, bytes]]:
        conns = [c for c in self.reader.connections if c.topic in topics]
        if not conns:
            return
        for conn, t, raw in self.reader.messages(connections=conns):
            yield conn.topic, conn.msgtype, t, raw

    def deserialize(self, raw: bytes, msgtype: str) -> Any:
        return self.reader.deserialize(raw, msgtype)

    def close(self) -> None:
        try:
            self.reader.close()
        except Exception:  # already closed after an error
            pass


def _merged_typestore(default: Any, extra: dict) -> Any:
    """A typestore holding ``default``'s types overridden by ``extra`` (definitions from the bag)."""
    from rosbags.typesys import Stores, get_typestore

    types = dict(default.fielddefs)
    types.update(extra)
    ts = get_typestore(Stores.EMPTY)
    ts.register(types)
    return ts


class _McapSalvage(_Source):
    """Streams an MCAP file record by record (no summary/footer needed): reads what precedes a
    truncation and skips chunks that fail their CRC or do not decompress."""

    def __init__(self, path: Path, typestore: Any, problems: list[str]) -> None:
        self.name = f"{path} (salvage)"
        self.path = path
        self.problems = problems
        self._default = typestore
        with path.open("rb") as f:
            magic = f.read(8)
        if magic != _MCAP_MAGIC:
            raise BagOpenError(f"{path}: not an MCAP file (bad magic bytes)")
        self.schemas: dict[int, tuple[str, str, str]] = {}
        self.channels: dict[int, TopicInfo] = {}
        self.counts: dict[int, int] = {}
        # first pass: schemas, channels and message counts (cheap: chunks are decompressed once)
        for _ in self._records(count_only=True):
            pass
        self.typestore = self._build_typestore()

    def _build_typestore(self) -> Any:
        from rosbags.typesys import get_types_from_idl, get_types_from_msg

        extra: dict = {}
        for name, encoding, data in self.schemas.values():
            try:
                if encoding == "ros2msg":
                    extra.update(get_types_from_msg(data, name))
                elif encoding in ("ros2idl", "omgidl"):
                    extra.update(get_types_from_idl(data))
            except Exception as exc:
                self.problems.append(f"{self.path}: schema {name!r} unreadable ({exc}); using built-in types")
        try:
            return _merged_typestore(self._default, extra)
        except Exception as exc:
            self.problems.append(f"{self.path}: embedded schemas conflict ({exc}); using built-in types")
            return self._default

    def topic_infos(self) -> list[TopicInfo]:
        for cid, info in self.channels.items():
            info.count = self.counts.get(cid, 0)
        return list(self.channels.values())

    def messages(self, topics: set[str]) -> Iterator[tuple[str, str, int, bytes]]:
        for cid, t, raw in self._records(count_only=False):
            info = self.channels.get(cid)
            if info is not None and info.topic in topics:
                yield info.topic, info.msgtype, t, raw

    # --- MCAP record parsing (https://mcap.dev/spec) ---
    def _records(self, count_only: bool) -> Iterator[tuple[int, int, bytes]]:
        from rosbags.rosbag2.storage_mcap import decompress

        report = count_only  # report damage once (first pass)
        with self.path.open("rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as data:
            yield from self._walk(data, count_only, report, decompress)

    def _walk(
        self, data: Any, count_only: bool, report: bool, decompress: Any
    ) -> Iterator[tuple[int, int, bytes]]:
        end = len(data)
        pos = 8
        footer = False
        while pos < end:
            if end - pos < 9:
                break
            op = data[pos]
            (size,) = struct.unpack_from("<Q", data, pos + 1)
            body_start = pos + 9
            if body_start + size > end:
                if report:
                    self.problems.append(
                        f"{self.path}: truncated at byte {pos} (record 0x{op:02x} needs {size} bytes, "
                        f"{end - body_start} left); messages before it are read"
                    )
                if op == 0x06:  # an uncompressed chunk cut short still holds whole messages
                    yield from self._partial_chunk(bytes(data[body_start:end]), count_only)
                break
            body = data[body_start : body_start + size]
            pos = body_start + size
            if op == 0x02:  # footer
                footer = True
                break
            if op == 0x06:
                try:
                    rec = BytesIO(body)
                    _, _, usize, crc = struct.unpack("<QQQI", rec.read(28))
                    (clen,) = struct.unpack("<I", rec.read(4))
                    compression = rec.read(clen).decode()
                    (csize,) = struct.unpack("<Q", rec.read(8))
                    inner = decompress(rec.read(csize), compression, usize, crc)
                except Exception as exc:
                    if report:
                        self.problems.append(
                            f"{self.path}: skipped a damaged chunk at byte {pos - size - 9} ({exc})"
                        )
                    continue
                yield from self._inner(inner, count_only, report)
            else:
                yield from self._one(op, body, count_only)
        if report and not footer and not any(str(self.path) in p and "truncated" in p for p in self.problems):
            self.problems.append(
                f"{self.path}: ends without an MCAP footer (truncated); messages before it are read"
            )

    def _partial_chunk(self, body: bytes, count_only: bool) -> Iterator[tuple[int, int, bytes]]:
        try:
            rec = BytesIO(body)
            rec.read(28)
            (clen,) = struct.unpack("<I", rec.read(4))
            compression = rec.read(clen).decode()
            rec.read(8)
        except (struct.error, UnicodeDecodeError):
            return
        if compression == "":
            yield from self._inner(body[rec.tell() :], count_only, report=False)

    def _inner(self, data: bytes, count_only: bool, report: bool) -> Iterator[tuple[int, int, bytes]]:
        pos, end = 0, len(data)
        while pos + 9 <= end:
            op = data[pos]
            (size,) = struct.unpack_from("<Q", data, pos + 1)
            if pos + 9 + size > end:
                if report:
                    self.problems.append(
                        f"{self.path}: malformed record inside a chunk; rest of the chunk skipped"
                    )
                return
            yield from self._one(op, data[pos + 9 : pos + 9 + size], count_only)
            pos += 9 + size

    def _one(self, op: int, body: bytes, count_only: bool) -> Iterator[tuple[int, int, bytes]]:
        try:
            if op == 0x03 and count_only:
                rec = BytesIO(body)
                (sid,) = struct.unpack("<H", rec.read(2))
                name, encoding = _mcap_str(rec), _mcap_str(rec)
                (dlen,) = struct.unpack("<I", rec.read(4))
                self.schemas[sid] = (name, encoding, rec.read(dlen).decode())
            elif op == 0x04 and count_only:
                from rosbags.rosbag2.storage_mcap import get_qos

                rec = BytesIO(body)
                cid, sid = struct.unpack("<HH", rec.read(4))
                topic, _encoding = _mcap_str(rec), _mcap_str(rec)
                (mlen,) = struct.unpack("<I", rec.read(4))
                try:
                    qos = get_qos(rec.read(mlen))
                except Exception:
                    qos = []
                name, enc, text = self.schemas.get(sid, ("", "", ""))
                self.channels[cid] = TopicInfo(topic, name, 0, qos, text if enc == "ros2msg" else "")
            elif op == 0x05:
                cid, _seq, log_time, _pub = struct.unpack_from("<HIQQ", body, 0)
                if count_only:
                    self.counts[cid] = self.counts.get(cid, 0) + 1
                else:
                    yield cid, log_time, body[22:]
        except (struct.error, UnicodeDecodeError) as exc:
            if count_only:
                self.problems.append(f"{self.path}: skipped a malformed record 0x{op:02x} ({exc})")


def _mcap_str(rec: BytesIO) -> str:
    (n,) = struct.unpack("<I", rec.read(4))
    return rec.read(n).decode()


class _SqliteSalvage(_Source):
    """Reads a damaged rosbag2 .db3 row by row, skipping rows on corrupt pages."""

    def __init__(self, path: Path, typestore: Any, problems: list[str]) -> None:
        self.name = f"{path} (salvage)"
        self.path = path
        self.problems = problems
        self.typestore = typestore
        try:
            self.db = sqlite3.connect(f"file:{path}?mode=ro&immutable=1", uri=True, check_same_thread=False)
            rows = self.db.execute("SELECT * FROM topics").fetchall()
            cols = [d[0] for d in self.db.execute("SELECT * FROM topics LIMIT 0").description]
        except sqlite3.Error as exc:
            raise BagOpenError(f"{path}: sqlite3 storage unreadable ({exc})") from None
        from rosbags.rosbag2.metadata import parse_qos

        self.topics_by_id: dict[int, TopicInfo] = {}
        for row in rows:
            r = dict(zip(cols, row))
            try:
                qos = parse_qos(r.get("offered_qos_profiles") or "")
            except Exception:
                qos = []
            self.topics_by_id[r["id"]] = TopicInfo(r["name"], r["type"], None, qos)

    def topic_infos(self) -> list[TopicInfo]:
        return list(self.topics_by_id.values())

    def _max_id(self) -> int:
        try:
            return int(self.db.execute("SELECT max(id) FROM messages").fetchone()[0] or 0)
        except sqlite3.Error:
            return -1

    def messages(self, topics: set[str]) -> Iterator[tuple[str, str, int, bytes]]:
        wanted = {tid: info for tid, info in self.topics_by_id.items() if info.topic in topics}
        max_id = self._max_id()
        lost, misses, i = 0, 0, 0
        while True:
            i += 1
            if max_id >= 0 and i > max_id:
                break
            try:
                row = self.db.execute(
                    "SELECT topic_id, timestamp, data FROM messages WHERE id=?", (i,)
                ).fetchone()
            except sqlite3.Error:
                lost += 1
                misses += 1
                if max_id < 0 and misses > 10000:
                    break
                continue
            if row is None:
                misses += 1
                if max_id >= 0:
                    lost += 1  # ids of rosbag2 writers are contiguous: a hole is a lost row
                if max_id < 0 and misses > 10000:
                    break
                continue
            misses = 0
            info = wanted.get(row[0])
            if info is not None:
                yield info.topic, info.msgtype, int(row[1]), bytes(row[2])
        if lost:
            self.problems.append(f"{self.path}: {lost} message rows lost (corrupt database pages)")

    def close(self) -> None:
        self.db.close()


def _storage_files(path: Path) -> list[Path]:
    return sorted(p for p in path.iterdir() if p.suffix in STORAGE_SUFFIXES and p.is_file())


def _salvage(path: Path, typestore: Any, problems: list[str]) -> _Source:
    if path.suffix == ".mcap":
        return _McapSalvage(path, typestore, problems)
    if path.suffix == ".db3":
        return _SqliteSalvage(path, typestore, problems)
    raise BagOpenError(
        f"{path}: cannot be opened and there is no salvage reader for {path.suffix or 'this'} files"
    )


class BagReader:
    """A bag opened as robustly as possible.

    ``path`` is a rosbag2 directory, a single ``.mcap`` / ``.db3`` file, or a ROS 1 ``.bag``.
    Problems found (missing metadata.yaml, truncation, corrupt pages or chunks, undecodable
    messages) are appended to ``problems`` as readable sentences; :class:`BagOpenError` is raised
    only when nothing can be read at all.
    """

    def __init__(self, path: str | Path, typestore: Any = None) -> None:
        self.path = Path(path)
        self.typestore = typestore if typestore is not None else default_typestore()
        self.problems: list[str] = []
        self._files: list[Path] = []
        self.sources: list[_Source] = self._open()
        self.topics: dict[str, TopicInfo] = {}
        for src in self.sources:
            for info in src.topic_infos():
                have = self.topics.get(info.topic)
                if have is None:
                    self.topics[info.topic] = TopicInfo(
                        info.topic, info.msgtype, info.count, info.qos, info.msgdef, info.digest
                    )
                elif have.msgtype != info.msgtype:
                    self.problems.append(
                        f"topic {info.topic} has several types ({have.msgtype}, {info.msgtype}); "
                        f"only {have.msgtype} is used"
                    )
                else:
                    have.count = None if have.count is None or info.count is None else have.count + info.count

    # --- opening ---
    def _open(self) -> list[_Source]:
        p = self.path
        if not p.exists():
            raise BagOpenError(f"{p}: no such file or directory")
        if p.is_dir():
            self._files = _storage_files(p)
            if not (p / "metadata.yaml").exists():
                if not self._files:
                    raise BagOpenError(
                        f"{p}: not a bag directory (no metadata.yaml and no .mcap/.db3/.bag files in it)"
                    )
                self.problems.append(
                    f"{p}: metadata.yaml is missing; reading its storage files directly: "
                    + ", ".join(f.name for f in self._files)
                )
                return self._open_files(self._files)
        else:
            self._files = [p]
        try:
            return [_AnySource([p], self.typestore)]
        except Exception as exc:
            if p.is_file():
                self.problems.append(f"{p}: unreadable by rosbags ({_why(exc)}); salvaging what can be read")
                return self._open_files([p], salvage_only=True)
            self.problems.append(f"{p}: cannot be opened as a whole ({_why(exc)}); trying each storage file")
        return self._open_files(self._files)

    def _open_files(self, files: list[Path], salvage_only: bool = False) -> list[_Source]:
        sources: list[_Source] = []
        for f in files:
            if not salvage_only:
                try:
                    sources.append(_AnySource([f], self.typestore))
                    continue
                except Exception as exc:
                    self.problems.append(
                        f"{f}: unreadable by rosbags ({_why(exc)}); salvaging what can be read"
                    )
            try:
                sources.append(_salvage(f, self.typestore, self.problems))
            except BagOpenError as exc:
                self.problems.append(str(exc))
        if not sources:
            raise BagOpenError(f"{self.path}: nothing readable: " + "; ".join(self.problems[-3:]))
        return sources

    # --- queries ---
    def image_topics(self) -> list[str]:
        """Topics of type sensor_msgs/Image or CompressedImage, sorted by name."""
        return sorted(t for t, info in self.topics.items() if info.kind)

    def messages(self, topics: Sequence[str] | None = None) -> Iterator[RawMessage]:
        """Yield the raw messages of ``topics`` (all when None) source by source.

        When a source fails part-way, the failure is recorded and the salvage readers continue
        with the messages not yet yielded.
        """
        wanted = set(self.topics) if topics is None else set(topics)
        for src in self.sources:
            seen: set[tuple[str, int]] = set()
            try:
                for topic, msgtype, t, raw in src.messages(wanted):
                    seen.add((topic, t))
                    yield RawMessage(topic, msgtype, t, raw, src)
                continue
            except Exception as exc:
                self.problems.append(f"{src.name}: reading failed after {len(seen)} messages ({_why(exc)})")
            if not isinstance(src, _AnySource):
                continue
            files = [f for f in src.paths if f.is_file()] or self._files
            for f in files:
                try:
                    salv = _salvage(f, self.typestore, self.problems)
                except BagOpenError as exc:
                    self.problems.append(str(exc))
                    continue
                n0 = len(seen)
                try:
                    for topic, msgtype, t, raw in salv.messages(wanted):
                        if (topic, t) not in seen:
                            seen.add((topic, t))
                            yield RawMessage(topic, msgtype, t, raw, salv)
                except Exception as exc:
                    self.problems.append(f"{salv.name}: stopped ({_why(exc)})")
                self.problems.append(f"{f}: salvage recovered {len(seen) - n0} more messages")

    def deserialize(self, m: RawMessage) -> Any:
        return m.source.deserialize(m.raw, m.msgtype)

    def close(self) -> None:
        for s in self.sources:
            s.close()

    def __enter__(self) -> BagReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _why(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text if len(text) < 300 else text[:300] + "..."


def stamp_ns(msg: Any) -> int | None:
    """Header stamp of a deserialised message in integer ns (None when it has no header)."""
    header = getattr(msg, "header", None)
    stamp = getattr(header, "stamp", None)
    if stamp is None:
        return None
    sec = getattr(stamp, "sec", None)
    nsec = getattr(stamp, "nanosec", None)
    if sec is None:  # ROS 1 style
        sec, nsec = getattr(stamp, "secs", 0), getattr(stamp, "nsecs", 0)
    return int(sec) * 1_000_000_000 + int(nsec or 0)
