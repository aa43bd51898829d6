"""The shared test helpers: a wait returns the first truthy value or says what it awaited."""

from __future__ import annotations

import itertools
import socket

import pytest

from tests.helpers import free_port, wait_until, wait_until_async


def test_wait_until_returns_the_first_truthy_value() -> None:
    counter = itertools.count()
    assert wait_until(lambda: [n] if (n := next(counter)) >= 2 else [], "two", interval=0) == [2]


def test_a_wait_that_times_out_says_what_it_awaited() -> None:
    with pytest.raises(TimeoutError, match=r"after 0.05s waiting for the SMS"):
        wait_until(lambda: None, "the SMS", timeout=0.05, interval=0.01)
    seen = ["queued"]
    with pytest.raises(TimeoutError, match=r"sent; got \['queued'\]"):
        wait_until(lambda: False, lambda: f"sent; got {seen}", timeout=0.01, interval=0.01)


async def test_wait_until_async_lets_the_loop_run_and_times_out_the_same() -> None:
    counter = itertools.count()
    assert await wait_until_async(lambda: next(counter) >= 3 and "done", "three") == "done"
    with pytest.raises(TimeoutError, match="waiting for a poll"):
        await wait_until_async(lambda: 0, "a poll", timeout=0.05)


def test_free_port_can_be_bound() -> None:
    port = free_port()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", port))
