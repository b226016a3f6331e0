"""The CRI log reader behind ``kubectl logs``: parsing, tail, since, timestamps, limits, follow."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from cloudlet.node.logs import (
    LogOptions,
    format_record,
    format_time,
    parse_record,
    parse_time,
    read_log,
    tail_offset,
)

S = 1_000_000_000
BASE = 1_475_713_029 * S  # 2016-10-06T00:17:09Z


async def collect(path: Path, opts: LogOptions, running: object = None) -> bytes:
    return b"".join([c async for c in read_log(path, opts, running)])  # type: ignore[arg-type]


def run(path: Path, **kw: object) -> bytes:
    return asyncio.run(collect(path, LogOptions(**kw)))  # type: ignore[arg-type]


def test_time_parsing_and_formatting() -> None:
    assert parse_time("2016-10-06T00:17:09.669794202Z") == BASE + 669_794_202
    assert parse_time("2016-10-06T02:17:09.5+02:00") == BASE + 500_000_000
    assert parse_time("2016-10-06T00:17:09Z") == BASE
    assert format_time(BASE + 669_794_202) == "2016-10-06T00:17:09.669794202Z"
    assert format_time(BASE + 669_794_200) == "2016-10-06T00:17:09.6697942Z"  # Go drops trailing zeros
    assert format_time(BASE) == "2016-10-06T00:17:09Z"
    for bad in ("2016-10-06", "2016-10-06T00:17:09", "2016-10-06T00:17:09.Z", "yesterday"):
        with pytest.raises(ValueError):
            parse_time(bad)


def test_parse_record() -> None:
    rec = parse_record(b"2016-10-06T00:17:09.669794202Z stdout F hello world ")
    assert rec is not None and rec.stream == "stdout" and not rec.partial and rec.content == b"hello world "
    rec = parse_record(b"2016-10-06T00:17:09.669794202Z stderr P ")
    assert rec is not None and rec.partial and rec.content == b""
    rec = parse_record(b"2016-10-06T00:17:09.669794202Z stdout F")  # an empty line
    assert rec is not None and rec.content == b""
    assert parse_record(b"garbage") is None
    assert parse_record(b"2016-10-06T00:17:09Z stdin F x") is None
    assert parse_record(b"2016-10-06T00:17:09Z stdout X x") is None


def write(path: Path, *records: tuple[str, bytes, int, bool]) -> Path:
    path.write_bytes(b"".join(format_record(s, c, t, p) for s, c, t, p in records))
    return path


def test_full_read_joins_partial_lines_and_skips_garbage(tmp_path: Path) -> None:
    p = write(tmp_path / "c.log",
              ("stdout", b"one", BASE, False),
              ("stderr", b"tw", BASE + 1, True),
              ("stderr", b"o", BASE + 2, False),
              ("stdout", b"", BASE + 3, False))
    with p.open("ab") as f:
        f.write(b"not a record\n2016-10-06T00:17:10Z stdout F three\n2016-10-06T00:17:11Z stdout F unfinis")
    assert run(p) == b"one\ntwo\n\nthree\n"  # the unterminated last line is not sent yet


def test_tail_counts_logical_lines(tmp_path: Path) -> None:
    p = write(tmp_path / "c.log", *[("stdout", f"line {i}".encode(), BASE + i, i % 3 == 1) for i in range(10)])
    # records 1, 4, 7 are partial: logical lines are "line 0", "line 1line 2", "line 3", ...
    assert run(p, tail_lines=1) == b"line 9\n"
    assert run(p, tail_lines=2) == b"line 7line 8\nline 9\n"
    assert run(p, tail_lines=0) == b""
    assert run(p, tail_lines=100) == run(p)
    assert tail_offset(p, 100) == 0


def test_tail_of_a_big_file_reads_from_the_end(tmp_path: Path) -> None:
    p = tmp_path / "big.log"
    line = format_record("stdout", b"x" * 200, BASE)
    p.write_bytes(line * 20_000 + format_record("stdout", b"the end", BASE))  # ~4.5 MB
    assert run(p, tail_lines=1) == b"the end\n"
    assert run(p, tail_lines=3) == b"x" * 200 + b"\n" + b"x" * 200 + b"\nthe end\n"
    assert tail_offset(p, 1) == p.stat().st_size - len(format_record("stdout", b"the end", BASE))


def test_since_timestamps_and_limit(tmp_path: Path) -> None:
    p = write(tmp_path / "c.log",
              ("stdout", b"old", BASE, False),
              ("stdout", b"new", BASE + 5 * S + 100, False),
              ("stderr", b"newer", BASE + 6 * S, False))
    assert run(p, since_ns=BASE + 5 * S) == b"new\nnewer\n"
    assert run(p, timestamps=True, tail_lines=2) == (
        b"2016-10-06T00:17:14.0000001Z new\n2016-10-06T00:17:15Z newer\n")
    assert run(p, limit_bytes=6) == b"old\nne"
    assert run(p, limit_bytes=1000) == b"old\nnew\nnewer\n"
    assert run(p, timestamps=True, limit_bytes=10) == b"2016-10-06"


def test_follow_until_the_container_stops(tmp_path: Path) -> None:
    p = write(tmp_path / "c.log", ("stdout", b"a", BASE, False))
    state = {"running": True}

    async def scenario() -> list[bytes]:
        got: asyncio.Queue[bytes] = asyncio.Queue()
        stream = read_log(p, LogOptions(follow=True), lambda: state["running"], poll=0.01)

        async def consume() -> None:
            async for chunk in stream:
                got.put_nowait(chunk)

        task = asyncio.create_task(consume())
        out = [await asyncio.wait_for(got.get(), 10)]
        with p.open("ab") as f:
            f.write(format_record("stdout", b"b", BASE + 1))
        out.append(await asyncio.wait_for(got.get(), 10))
        assert not task.done()
        with p.open("ab") as f:
            f.write(format_record("stderr", b"c", BASE + 2))
        state["running"] = False
        await asyncio.wait_for(task, 10)
        while not got.empty():
            out.append(got.get_nowait())
        return out

    assert b"".join(asyncio.run(scenario())) == b"a\nb\nc\n"


def test_follow_with_tail_and_limit_stops_at_the_limit(tmp_path: Path) -> None:
    p = write(tmp_path / "c.log", *[("stdout", b"%d" % i, BASE + i, False) for i in range(5)])

    async def scenario() -> bytes:
        return await asyncio.wait_for(
            collect(p, LogOptions(follow=True, tail_lines=2, limit_bytes=3), lambda: True), 10)

    assert asyncio.run(scenario()) == b"3\n4"


def test_a_missing_file_reads_empty_and_is_waited_for_when_following(tmp_path: Path) -> None:
    p = tmp_path / "later.log"
    assert run(p) == b"" and run(p, tail_lines=3) == b""

    async def scenario() -> bytes:
        state = {"running": True}
        out: asyncio.Queue[bytes] = asyncio.Queue()

        async def consume() -> None:
            async for chunk in read_log(p, LogOptions(follow=True), lambda: state["running"], poll=0.01):
                out.put_nowait(chunk)

        task = asyncio.create_task(consume())
        await asyncio.sleep(0)
        p.write_bytes(format_record("stdout", b"finally", BASE))
        got = await asyncio.wait_for(out.get(), 10)
        state["running"] = False
        await asyncio.wait_for(task, 10)
        return got

    assert asyncio.run(scenario()) == b"finally\n"
