"""Reading container logs in the CRI format: ``kubectl logs`` on the node side.

The runtime (conmon's ``k8s-file`` driver, or any handler honouring
:attr:`ContainerSpec.log_path`) appends one record per line::

    2016-10-06T00:17:09.669794202Z stdout F the whole line
    2016-10-06T00:17:09.669794203Z stderr P the first part of a long line
    2016-10-06T00:17:09.669794204Z stderr F ...and its end

``F`` ends a log line; ``P`` records are pieces of one longer line, written
back to back. :func:`read_log` turns such a file into the bytes kubelet sends
for ``GET pods/{name}/log``, with its options (:class:`LogOptions`):

* ``tail_lines`` — only the last N lines (found by reading blocks from the
  end of the file, so a big log is not read whole); a line made of ``P``
  pieces counts once.
* ``since_ns`` — skip records older than this time (``sinceSeconds``/``sinceTime``).
* ``timestamps`` — prefix every line with its time, RFC3339Nano as Go prints
  it (trailing zeros of the fraction dropped, ``Z`` for UTC).
* ``limit_bytes`` — stop after that many bytes (prefixes included), cutting
  the last line.
* ``follow`` — at end of file, wait for more until ``running()`` says the
  container has stopped and the file is drained.

File rotation is not followed; a missing file reads as empty (and is waited
for with ``follow``). Blocking reads run in a worker thread.
"""

from __future__ import annotations

import asyncio
import calendar
import os
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

BLOCK = 256 * 1024
FOLLOW_POLL = 0.1  # seconds between looks at a followed file


@dataclass
class LogOptions:
    tail_lines: int | None = None  # None: all
    since_ns: int | None = None  # unix nanoseconds; older records are skipped
    timestamps: bool = False
    limit_bytes: int | None = None
    follow: bool = False


@dataclass
class Record:
    """One CRI log record (a physical line of the file)."""

    time_ns: int
    stream: str  # "stdout" | "stderr"
    partial: bool  # tag P
    content: bytes  # without the trailing newline


def parse_time(text: str) -> int:
    """RFC 3339 (optionally with up to nine fraction digits) to unix nanoseconds."""
    if len(text) < 20 or text[10] not in "Tt" or text[4] != "-" or text[7] != "-":
        raise ValueError(f"not an RFC 3339 time: {text!r}")
    secs = calendar.timegm((int(text[0:4]), int(text[5:7]), int(text[8:10]),
                            int(text[11:13]), int(text[14:16]), int(text[17:19]), 0, 0, 0))
    rest = text[19:]
    frac = 0
    if rest.startswith("."):
        i = 1
        while i < len(rest) and rest[i].isdigit():
            i += 1
        digits = rest[1:i]
        if not digits:
            raise ValueError(f"not an RFC 3339 time: {text!r}")
        frac = int(digits[:9].ljust(9, "0"))
        rest = rest[i:]
    if rest in ("Z", "z"):
        offset = 0
    elif len(rest) == 6 and rest[0] in "+-" and rest[3] == ":":
        offset = (int(rest[1:3]) * 60 + int(rest[4:6])) * 60
        if rest[0] == "-":
            offset = -offset
    else:
        raise ValueError(f"not an RFC 3339 time: {text!r}")
    return (secs - offset) * 1_000_000_000 + frac


def format_time(ns: int) -> str:
    """Go's ``time.RFC3339Nano`` of a UTC time: ``2016-10-06T00:17:09.6697942Z``."""
    secs, frac = divmod(ns, 1_000_000_000)
    out = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(secs))
    if frac:
        out += "." + f"{frac:09d}".rstrip("0")
    return out + "Z"


def parse_record(line: bytes) -> Record | None:
    """One physical line (without its newline); None if it is not a CRI record."""
    parts = line.split(b" ", 3)
    if len(parts) < 3:
        return None
    try:
        ts = parse_time(parts[0].decode("ascii"))
    except (ValueError, UnicodeDecodeError):
        return None
    stream = parts[1].decode("ascii", "replace")
    tag = parts[2]
    if stream not in ("stdout", "stderr") or tag not in (b"F", b"P"):
        return None
    return Record(ts, stream, tag == b"P", parts[3] if len(parts) > 3 else b"")


def _is_full(line: bytes) -> bool:
    parts = line.split(b" ", 3)
    return len(parts) >= 3 and parts[2] == b"F"


def tail_offset(path: str | os.PathLike[str], lines: int) -> int:
    """File offset where the last ``lines`` log lines start (blocking).

    Reads fixed blocks backwards from the end; an incomplete last physical
    line (no newline yet) is not counted.
    """
    with open(path, "rb") as f:
        size = f.seek(0, os.SEEK_END)
        if lines <= 0:
            return size
        pos = size
        carry = b""
        first = True
        seen = 0
        while pos > 0:
            step = min(BLOCK, pos)
            pos -= step
            f.seek(pos)
            data = f.read(step) + carry
            parts = data.split(b"\n")
            if first:
                trailing = parts.pop()  # after the last newline: empty or a line being written
                end = pos + len(data) - len(trailing)
                first = False
            else:
                end = pos + len(data) + 1  # carry ended right before a newline
            if pos > 0:
                carry = parts[0]
                complete = parts[1:]
            else:
                carry = b""
                complete = parts
            for line in reversed(complete):
                if _is_full(line):
                    seen += 1
                    if seen > lines:
                        return end
                end -= len(line) + 1
        return 0


class _Reader:
    """Reads blocks from an offset and turns whole records into output bytes (runs in a thread).

    Times are parsed only when ``since`` or ``timestamps`` need them, and the
    seconds part is cached, so a plain read costs a split per line.
    """

    def __init__(self, path: str, offset: int, opts: LogOptions) -> None:
        self.path = path
        self.offset = offset
        self.opts = opts
        self.need_time = opts.since_ns is not None or opts.timestamps
        self.pending = b""  # a physical line without its newline yet
        self.at_line_start = True
        self._sec_text = b""
        self._sec_value = 0
        self._fmt_secs = -1
        self._fmt_text = b""

    def _time(self, stamp: bytes) -> int:
        # fast path, "YYYY-MM-DDTHH:MM:SS.fffffffffZ": the seconds rarely change between records
        if len(stamp) > 21 and stamp[19:20] == b"." and stamp[-1:] in (b"Z", b"z"):
            head, frac = stamp[:19], stamp[20:-1]
            if frac.isdigit():
                if head != self._sec_text:
                    self._sec_value = parse_time(head.decode("ascii") + "Z")
                    self._sec_text = head
                return self._sec_value + int(frac[:9].ljust(9, b"0"))
        return parse_time(stamp.decode("ascii"))

    def _format(self, ns: int) -> bytes:
        """``format_time(ns) + " "``, with the seconds part cached."""
        secs, frac = divmod(ns, 1_000_000_000)
        if secs != self._fmt_secs:
            self._fmt_secs = secs
            self._fmt_text = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(secs)).encode()
        if frac:
            return b"%s.%sZ " % (self._fmt_text, (b"%09d" % frac).rstrip(b"0"))
        return self._fmt_text + b"Z "

    def read(self) -> tuple[bool, bytes]:
        """(anything new in the file, output bytes) for the next block."""
        try:
            with open(self.path, "rb") as f:
                f.seek(self.offset)
                chunk = f.read(BLOCK)
        except FileNotFoundError:  # not written yet (or removed): nothing to read
            return False, b""
        if not chunk:
            return False, b""
        self.offset += len(chunk)
        lines = (self.pending + chunk).split(b"\n")
        self.pending = lines.pop()
        out = bytearray()
        since = self.opts.since_ns
        stamps = self.opts.timestamps
        for line in lines:
            parts = line.split(b" ", 3)
            if len(parts) < 3 or parts[1] not in (b"stdout", b"stderr"):
                continue
            tag = parts[2]
            if tag == b"F":
                partial = False
            elif tag == b"P":
                partial = True
            else:
                continue
            content = parts[3] if len(parts) > 3 else b""
            if self.need_time:
                try:
                    ts = self._time(parts[0])
                except (ValueError, UnicodeDecodeError):
                    continue
                if since is not None and ts < since:
                    continue
                if stamps and self.at_line_start:
                    out += self._format(ts)
            out += content
            if not partial:
                out += b"\n"
            self.at_line_start = not partial
        return True, bytes(out)


async def read_log(
    path: str | os.PathLike[str],
    opts: LogOptions,
    running: Callable[[], bool] | None = None,
    poll: float = FOLLOW_POLL,
) -> AsyncIterator[bytes]:
    """Yield the log's bytes as kubelet would send them (see the module docstring).

    ``running`` is asked only with ``opts.follow``: the stream ends once it
    returns False and the file holds no more complete lines.
    """
    p = os.fspath(path)
    offset = 0
    if opts.tail_lines is not None:
        try:
            offset = await asyncio.to_thread(tail_offset, p, opts.tail_lines)
        except FileNotFoundError:
            offset = 0
    reader = _Reader(p, offset, opts)
    remaining = opts.limit_bytes
    stopping = False
    while True:
        more, out = await asyncio.to_thread(reader.read)
        if out:
            if remaining is not None:
                if len(out) >= remaining:
                    yield out[:remaining]
                    return
                remaining -= len(out)
            yield out
        if more:
            continue
        if not opts.follow or stopping:
            return
        if running is not None and not running():
            stopping = True  # one more look: lines written between the last read and the check
            continue
        await asyncio.sleep(poll)


def format_record(stream: str, content: bytes, time_ns: int | None = None, partial: bool = False) -> bytes:
    """One CRI record line (with its newline) — what a runtime appends; for tests and stand-ins."""
    ns = time.time_ns() if time_ns is None else time_ns
    return b"%s %s %s %s\n" % (format_time(ns).encode(), stream.encode(), b"P" if partial else b"F", content)
