"""Minimal SPDY/3.1 framing: the server side of ``kubectl port-forward``'s tunnel.

kubectl (client-go) 1.30+ port-forwards over a WebSocket whose subprotocol is
``SPDY/3.1+portforward.k8s.io``: the binary WebSocket messages carry a plain
SPDY/3.1 byte stream (message boundaries mean nothing). This module is the
framing only, written from the SPDY/3 draft: a streaming :class:`FrameReader`
and encoders for the frames a port-forward server needs — SYN_REPLY, DATA,
RST_STREAM, PING, GOAWAY. Header blocks are zlib-compressed with the SPDY/3
dictionary (one compression context per direction per connection, each block
ended by a sync flush). Flow control (WINDOW_UPDATE, SETTINGS) is read and
ignored: client-go's SPDY stack does not use it either.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass, field

VERSION = 3

SYN_STREAM = 1
SYN_REPLY = 2
RST_STREAM = 3
SETTINGS = 4
PING = 6
GOAWAY = 7
HEADERS = 8
WINDOW_UPDATE = 9

FLAG_FIN = 0x01
FLAG_UNIDIRECTIONAL = 0x02

# RST_STREAM status codes
PROTOCOL_ERROR = 1
INVALID_STREAM = 2
REFUSED_STREAM = 3
CANCEL = 5
INTERNAL_ERROR = 6

MAX_DATA = 32 * 1024  # what we put in one DATA frame (the format allows 16 MiB)


def _dictionary() -> bytes:
    """The SPDY/3 header compression dictionary (draft 3, section 2.6.10.1).

    Length-prefixed header names and common values, followed by a run of
    unprefixed status codes, reason phrases, dates and media types.
    """
    words = (
        "options head post put delete trace accept accept-charset accept-encoding accept-language "
        "accept-ranges age allow authorization cache-control connection content-base content-encoding "
        "content-language content-length content-location content-md5 content-range content-type date "
        "etag expect expires from host if-match if-modified-since if-none-match if-range "
        "if-unmodified-since last-modified location max-forwards pragma proxy-authenticate "
        "proxy-authorization range referer retry-after server te trailer transfer-encoding upgrade "
        "user-agent vary via warning www-authenticate method get status 200_OK version HTTP/1.1 url "
        "public set-cookie keep-alive origin"
    )
    out = bytearray()
    for w in words.split(" "):
        w = w.replace("_", " ")
        out += struct.pack(">I", len(w)) + w.encode()
    out += (
        b"100101201202205206300302303304305306307402405406407408409410411412413414415416417502504505"
        b"203 Non-Authoritative Information204 No Content301 Moved Permanently400 Bad Request"
        b"401 Unauthorized403 Forbidden404 Not Found500 Internal Server Error501 Not Implemented"
        b"503 Service UnavailableJan Feb Mar Apr May Jun Jul Aug Sept Oct Nov Dec 00:00:00 "
        b"Mon, Tue, Wed, Thu, Fri, Sat, Sun, GMTchunked,text/html,image/png,image/jpg,image/gif,"
        b"application/xml,application/xhtml+xml,text/plain,text/javascript,publicprivatemax-age="
        b"gzip,deflate,sdchcharset=utf-8charset=iso-8859-1,utf-,*,enq=0."
    )
    return bytes(out)


DICTIONARY = _dictionary()


class ProtocolError(Exception):
    """The peer sent bytes that are not SPDY/3."""


@dataclass
class Frame:
    """One decoded frame. ``type`` 0 is a DATA frame."""

    type: int
    flags: int
    stream_id: int = 0
    data: bytes = b""
    headers: dict[str, list[str]] = field(default_factory=dict)
    status: int = 0  # RST_STREAM / GOAWAY status
    ping_id: int = 0

    @property
    def fin(self) -> bool:
        return bool(self.flags & FLAG_FIN)

    def header(self, name: str) -> str | None:
        values = self.headers.get(name.lower())
        return values[0] if values else None


def _decode_block(raw: bytes) -> dict[str, list[str]]:
    (n,) = struct.unpack_from(">I", raw, 0)
    pos = 4
    out: dict[str, list[str]] = {}
    for _ in range(n):
        (ln,) = struct.unpack_from(">I", raw, pos)
        name = raw[pos + 4 : pos + 4 + ln].decode("latin-1")
        pos += 4 + ln
        (lv,) = struct.unpack_from(">I", raw, pos)
        value = raw[pos + 4 : pos + 4 + lv].decode("latin-1")
        pos += 4 + lv
        out.setdefault(name.lower(), []).extend(value.split("\x00"))
    return out


class FrameReader:
    """Feed raw bytes in, get whole frames out (keeps the inbound zlib context)."""

    def __init__(self) -> None:
        self._buf = bytearray()
        self._inflate = zlib.decompressobj(zdict=DICTIONARY)

    def _headers(self, block: bytes) -> dict[str, list[str]]:
        try:
            raw = self._inflate.decompress(block)
        except zlib.error as e:
            raise ProtocolError(f"bad header block: {e}") from e
        try:
            return _decode_block(raw)
        except struct.error as e:
            raise ProtocolError("truncated header block") from e

    def feed(self, data: bytes) -> list[Frame]:
        self._buf += data
        frames: list[Frame] = []
        while len(self._buf) >= 8:
            first, flags_len = struct.unpack_from(">II", self._buf, 0)
            length = flags_len & 0xFFFFFF
            if len(self._buf) < 8 + length:
                break
            flags = flags_len >> 24
            body = bytes(self._buf[8 : 8 + length])
            del self._buf[: 8 + length]
            if not first & 0x80000000:
                frames.append(Frame(0, flags, first & 0x7FFFFFFF, body))
                continue
            version = (first >> 16) & 0x7FFF
            ftype = first & 0xFFFF
            if version != VERSION:
                raise ProtocolError(f"unsupported SPDY version {version}")
            try:
                frames.append(self._control(ftype, flags, body))
            except struct.error as e:
                raise ProtocolError(f"short control frame type {ftype}") from e
        return frames

    def _control(self, ftype: int, flags: int, body: bytes) -> Frame:
        if ftype == SYN_STREAM:
            sid, _assoc = struct.unpack_from(">II", body, 0)
            return Frame(ftype, flags, sid & 0x7FFFFFFF, headers=self._headers(body[10:]))
        if ftype in (SYN_REPLY, HEADERS):
            (sid,) = struct.unpack_from(">I", body, 0)
            return Frame(ftype, flags, sid & 0x7FFFFFFF, headers=self._headers(body[4:]))
        if ftype == RST_STREAM:
            sid, status = struct.unpack_from(">II", body, 0)
            return Frame(ftype, flags, sid & 0x7FFFFFFF, status=status)
        if ftype == PING:
            (pid,) = struct.unpack_from(">I", body, 0)
            return Frame(ftype, flags, ping_id=pid)
        if ftype == GOAWAY:
            sid, status = struct.unpack_from(">II", body, 0)
            return Frame(ftype, flags, sid & 0x7FFFFFFF, status=status)
        if ftype == WINDOW_UPDATE:
            (sid,) = struct.unpack_from(">I", body, 0)
            return Frame(ftype, flags, sid & 0x7FFFFFFF, data=body)
        return Frame(ftype, flags, data=body)  # SETTINGS and unknown types: ignored by callers


class FrameWriter:
    """Encodes outbound frames (keeps the outbound zlib context)."""

    def __init__(self) -> None:
        self._deflate = zlib.compressobj(zdict=DICTIONARY)

    @staticmethod
    def _control(ftype: int, flags: int, body: bytes) -> bytes:
        return struct.pack(">HHI", 0x8000 | VERSION, ftype, (flags << 24) | len(body)) + body

    def _block(self, headers: dict[str, str]) -> bytes:
        raw = bytearray(struct.pack(">I", len(headers)))
        for k, v in headers.items():
            kb, vb = k.lower().encode("latin-1"), v.encode("latin-1")
            raw += struct.pack(">I", len(kb)) + kb + struct.pack(">I", len(vb)) + vb
        return self._deflate.compress(bytes(raw)) + self._deflate.flush(zlib.Z_SYNC_FLUSH)

    def syn_reply(self, stream_id: int, headers: dict[str, str] | None = None, fin: bool = False) -> bytes:
        body = struct.pack(">I", stream_id & 0x7FFFFFFF) + self._block(headers or {})
        return self._control(SYN_REPLY, FLAG_FIN if fin else 0, body)

    def syn_stream(self, stream_id: int, headers: dict[str, str], fin: bool = False) -> bytes:
        """Client side (tests): open a stream."""
        body = struct.pack(">IIBB", stream_id & 0x7FFFFFFF, 0, 0, 0) + self._block(headers)
        return self._control(SYN_STREAM, FLAG_FIN if fin else 0, body)

    @staticmethod
    def data(stream_id: int, payload: bytes, fin: bool = False) -> bytes:
        if len(payload) <= MAX_DATA:
            return struct.pack(">II", stream_id & 0x7FFFFFFF, ((FLAG_FIN if fin else 0) << 24) | len(payload)) + payload
        parts = [payload[i : i + MAX_DATA] for i in range(0, len(payload), MAX_DATA)]
        return b"".join(
            FrameWriter.data(stream_id, p, fin and i == len(parts) - 1) for i, p in enumerate(parts)
        )

    def rst_stream(self, stream_id: int, status: int) -> bytes:
        return self._control(RST_STREAM, 0, struct.pack(">II", stream_id & 0x7FFFFFFF, status))

    def ping(self, ping_id: int) -> bytes:
        return self._control(PING, 0, struct.pack(">I", ping_id))

    def goaway(self, last_stream_id: int, status: int = 0) -> bytes:
        return self._control(GOAWAY, 0, struct.pack(">II", last_stream_id & 0x7FFFFFFF, status))
