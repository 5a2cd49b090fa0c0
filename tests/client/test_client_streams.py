"""WatchStream and StateStream: callables that feed async iterators."""

from __future__ import annotations

import pytest
import trio
import trio.testing

from coord.client import (
    ClientState,
    SessionExpiredError,
    StateStream,
    StreamOverflowError,
    WatchStream,
)
from coord.messages import EventType, WatchedEvent


def ev(n: int) -> WatchedEvent:
    return WatchedEvent(EventType.CHANGED, "/a", n)


async def test_iterates_queued_events_then_ends() -> None:
    stream = WatchStream()
    stream(ev(1))
    stream(ev(2))
    stream.close()
    stream(ev(3))  # ignored after close
    assert [e.zxid async for e in stream] == [1, 2]
    with pytest.raises(trio.EndOfChannel):
        await stream.next()


async def test_overflow_delivers_what_fit_then_the_error() -> None:
    stream = WatchStream(max_buffer=2)
    for n in range(5):
        stream(ev(n))
    assert stream.closed
    assert stream.statistics() == {"queued": 2, "max_buffer": 2, "closed": True}
    assert (await stream.next()).zxid == 0
    assert stream.next_nowait().zxid == 1
    with pytest.raises(StreamOverflowError, match="buffer of 2 items"):
        await stream.next()


async def test_close_with_error() -> None:
    stream = WatchStream()
    stream.close(SessionExpiredError("gone"))
    with pytest.raises(SessionExpiredError):
        async for _ in stream:
            pass  # pragma: no cover


async def test_next_waits_for_an_event() -> None:
    stream = WatchStream()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(stream.next)
        await trio.testing.wait_all_tasks_blocked()
        stream(ev(9))
    with pytest.raises(trio.WouldBlock):
        stream.next_nowait()


async def test_state_stream_ends_after_final_state_and_detaches() -> None:
    detached: list[StateStream] = []
    states = StateStream(detach=detached.append)
    states(ClientState.SUSPENDED)
    states(ClientState.LOST)
    assert [s async for s in states] == [ClientState.SUSPENDED, ClientState.LOST]
    async with states:
        pass
    assert detached == [states]


def test_bad_buffer() -> None:
    with pytest.raises(ValueError):
        WatchStream(max_buffer=0)
