"""The recording file: gzip-compressed JSON Lines, one Kafka message per line.

The first line is a header::

    {"format": "perfloop-recording", "version": 1, "topics": ["metrics"],
     "partitions": {"metrics": 6}, "start": "earliest", "created_at": "2025-01-01T12:00:00Z"}

and every further line one message::

    {"topic": "metrics", "partition": 0, "offset": 12, "timestamp": 1700000000123,
     "timestamp_type": 0, "key": {"text": "checkout"}, "value": {"text": "{...}"},
     "headers": [["trace", {"b64": "AAE="}]]}

A bytes field (key, value, header value) is ``null``, ``{"text": ...}`` when the bytes are
valid UTF-8, or ``{"b64": ...}`` (standard base64) otherwise, so any message round-trips
exactly. ``timestamp`` is in milliseconds; ``timestamp_type`` is Kafka's (0 create time,
1 log-append time). Readers also accept an uncompressed file.

>>> msg = RecordedMessage("metrics", 0, 7, 1_700_000_000_000, 0, b"api", b"\\xff", [("h", b"1")])
>>> line = encode_message(msg)
>>> line
'{"topic":"metrics","partition":0,"offset":7,"timestamp":1700000000000,"timestamp_type":0,\
"key":{"text":"api"},"value":{"b64":"/w=="},"headers":[["h",{"text":"1"}]]}'
>>> decode_message(line) == msg
True
>>> decode_message('{"topic": "metrics"}')
Traceback (most recent call last):
...
perfloop.recording.RecordingError: partition: expected a non-negative integer, got None
"""

from __future__ import annotations

import base64
import binascii
import gzip
import json
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

FORMAT = "perfloop-recording"
VERSION = 1
_GZIP_MAGIC = b"\x1f\x8b"
_READ_BUFFER = 1024 * 1024


class RecordingError(ValueError):
    """A recording that cannot be read: the message names the line and the field."""


@dataclass(frozen=True, slots=True)
class RecordedMessage:
    """One Kafka message as it was read: where it was, when, and its exact bytes."""

    topic: str
    partition: int
    offset: int
    timestamp: int
    timestamp_type: int
    key: bytes | None
    value: bytes | None
    headers: list[tuple[str, bytes]] = field(default_factory=list)


@dataclass(frozen=True)
class RecordingHeader:
    """The first line: what was recorded, from where, and when."""

    topics: list[str]
    partitions: dict[str, int]
    start: str
    created_at: str
    version: int = VERSION

    def to_json(self) -> str:
        return json.dumps(
            {
                "format": FORMAT,
                "version": self.version,
                "topics": self.topics,
                "partitions": self.partitions,
                "start": self.start,
                "created_at": self.created_at,
            },
            separators=(",", ":"),
        )

    @classmethod
    def from_json(cls, line: str | bytes) -> RecordingHeader:
        try:
            data = json.loads(line)
        except ValueError as exc:
            raise RecordingError(f"not a {FORMAT} header: {exc}") from None
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise RecordingError(f"not a {FORMAT} header (format: {FORMAT!r} expected)")
        if data.get("version") != VERSION:
            raise RecordingError(f"version: {data.get('version')!r} is not supported ({VERSION})")
        topics, partitions = data.get("topics"), data.get("partitions", {})
        if not isinstance(topics, list) or not all(isinstance(t, str) for t in topics):
            raise RecordingError(f"topics: expected a list of names, got {topics!r}")
        if not isinstance(partitions, dict):
            raise RecordingError(f"partitions: expected an object, got {partitions!r}")
        return cls(
            topics=topics,
            partitions={str(k): int(v) for k, v in partitions.items()},
            start=str(data.get("start", "")),
            created_at=str(data.get("created_at", "")),
        )


def encode_bytes(data: bytes | None) -> dict[str, str] | None:
    """``{"text": ...}`` for valid UTF-8, else ``{"b64": ...}``; ``None`` stays ``None``."""
    if data is None:
        return None
    try:
        return {"text": data.decode("utf-8")}
    except UnicodeDecodeError:
        return {"b64": base64.b64encode(data).decode("ascii")}


def decode_bytes(name: str, obj: Any) -> bytes | None:
    """The bytes that :func:`encode_bytes` encoded as ``obj`` (``name`` is for errors)."""
    if obj is None:
        return None
    if isinstance(obj, dict) and len(obj) == 1:
        if isinstance(obj.get("text"), str):
            return str(obj["text"]).encode("utf-8")
        if isinstance(obj.get("b64"), str):
            try:
                return base64.b64decode(obj["b64"], validate=True)
            except binascii.Error as exc:
                raise RecordingError(f"{name}: bad base64 ({exc})") from None
    raise RecordingError(f'{name}: expected null, {{"text": ...}} or {{"b64": ...}}, got {obj!r}')


def encode_message(msg: RecordedMessage) -> str:
    """One JSON line (without the newline) for ``msg``."""
    return json.dumps(
        {
            "topic": msg.topic,
            "partition": msg.partition,
            "offset": msg.offset,
            "timestamp": msg.timestamp,
            "timestamp_type": msg.timestamp_type,
            "key": encode_bytes(msg.key),
            "value": encode_bytes(msg.value),
            "headers": [[name, encode_bytes(value)] for name, value in msg.headers],
        },
        separators=(",", ":"),
        ensure_ascii=False,
    )


def _int(data: dict[str, Any], name: str, minimum: int = 0) -> int:
    value = data.get(name)
    if type(value) is not int or value < minimum:
        kind = "non-negative integer" if minimum == 0 else "integer"
        raise RecordingError(f"{name}: expected a {kind}, got {value!r}")
    return value


def decode_message(line: str | bytes) -> RecordedMessage:
    """The message on one line; :class:`RecordingError` names the field that is wrong."""
    try:
        data = json.loads(line)
    except ValueError as exc:
        raise RecordingError(f"not JSON ({exc})") from None
    if not isinstance(data, dict):
        raise RecordingError(f"expected a JSON object, got {type(data).__name__}")
    topic = data.get("topic")
    if not isinstance(topic, str) or not topic:
        raise RecordingError(f"topic: expected a name, got {topic!r}")
    headers = data.get("headers", [])
    if not isinstance(headers, list):
        raise RecordingError(f"headers: expected a list, got {headers!r}")
    decoded: list[tuple[str, bytes]] = []
    for i, item in enumerate(headers):
        if not (isinstance(item, list) and len(item) == 2 and isinstance(item[0], str)):
            raise RecordingError(f"headers[{i}]: expected [name, value], got {item!r}")
        decoded.append((item[0], decode_bytes(f"headers[{i}]", item[1]) or b""))
    return RecordedMessage(
        topic=topic,
        partition=_int(data, "partition"),
        offset=_int(data, "offset", minimum=-1),
        timestamp=_int(data, "timestamp", minimum=-1),
        timestamp_type=_int(data, "timestamp_type"),
        key=decode_bytes("key", data.get("key")),
        value=decode_bytes("value", data.get("value")),
        headers=decoded,
    )


class RecordingWriter:
    """Writes a header and then messages to a gzip file; closing leaves a complete file.

    ``sync()`` makes everything written so far readable even if the process dies later.
    """

    def __init__(self, path: str | Path, header: RecordingHeader, compresslevel: int = 6) -> None:
        self.path = Path(path)
        self._raw = self.path.open("wb")
        self._gz = gzip.GzipFile(fileobj=self._raw, mode="wb", compresslevel=compresslevel)
        self._gz.write(header.to_json().encode() + b"\n")
        self.messages = 0
        self.sync()

    def write(self, msg: RecordedMessage) -> None:
        self._gz.write(encode_message(msg).encode("utf-8") + b"\n")
        self.messages += 1

    def sync(self) -> None:
        self._gz.flush(zlib.Z_SYNC_FLUSH)
        self._raw.flush()

    def close(self) -> None:
        if not self._gz.closed:
            self._gz.close()
        self._raw.close()

    def __enter__(self) -> RecordingWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _chunks(raw: IO[bytes]) -> Iterator[bytes]:
    """The decompressed bytes of a gzip stream (members may be concatenated), in big chunks.

    Big reads mean few calls that release the GIL, so a busy producer thread costs little
    waiting. A stream that ends early raises ``EOFError`` after everything before the cut.
    """
    inflate = zlib.decompressobj(wbits=31)
    while chunk := raw.read(_READ_BUFFER):
        data = inflate.decompress(chunk)
        while inflate.eof and inflate.unused_data:
            rest = inflate.unused_data
            inflate = zlib.decompressobj(wbits=31)
            data += inflate.decompress(rest)
        yield data
    if not inflate.eof:
        raise EOFError("the compressed stream ends before its end marker")


def _lines(raw: IO[bytes], compressed: bool) -> Iterator[bytes]:
    """The lines of the file, without loading it: at most one chunk and one line in memory."""
    pending = b""
    for chunk in _chunks(raw) if compressed else iter(lambda: raw.read(_READ_BUFFER), b""):
        parts = (pending + chunk).split(b"\n")
        pending = parts.pop()
        yield from parts
    if pending:
        yield pending


class RecordingReader:
    """Streams a recording: ``header`` first, then ``(line_number, message or error)`` pairs.

    A line that cannot be decoded is yielded as a :class:`RecordingError` naming its line, so
    the caller chooses to skip it or stop. A truncated or corrupt compressed stream ends the
    iteration with one last error. Memory use does not grow with the file.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._raw = self.path.open("rb")
        self._lines = _lines(self._raw, self._raw.read(2) == _GZIP_MAGIC)
        self._raw.seek(0)
        try:
            first = next(self._lines, b"")
        except (EOFError, OSError, zlib.error) as exc:
            self.close()
            raise RecordingError(f"{self.path}: line 1: not a readable file ({exc})") from None
        if not first:
            self.close()
            raise RecordingError(f"{self.path}: line 1: empty file, no header")
        try:
            self.header = RecordingHeader.from_json(first)
        except RecordingError as exc:
            self.close()
            raise RecordingError(f"{self.path}: line 1: {exc}") from None

    def __iter__(self) -> Iterator[tuple[int, RecordedMessage | RecordingError]]:
        number = 1
        while True:
            number += 1
            try:
                line = next(self._lines, None)
            except (EOFError, OSError, zlib.error) as exc:
                yield number, RecordingError(f"line {number}: the file is truncated ({exc})")
                return
            if line is None:
                return
            if not line.strip():
                continue
            try:
                yield number, decode_message(line)
            except RecordingError as exc:
                yield number, RecordingError(f"line {number}: {exc}")

    def close(self) -> None:
        self._raw.close()

    def __enter__(self) -> RecordingReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
