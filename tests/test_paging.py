"""Remembered estimates: fresh for a minute, then found again by one request at a time."""

from __future__ import annotations

import pytest

from counseldesk.db import paging


class _Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> _Clock:
    clock = _Clock()
    monkeypatch.setattr(paging, "_clock", clock)
    return clock


def test_a_number_is_remembered_for_its_time_to_live(clock: _Clock) -> None:
    assert paging.remembered_estimate("tickets:x") is None
    paging.remember_estimate("tickets:x", 5000)
    clock.now += paging.ESTIMATE_TTL_SECONDS - 1
    assert paging.remembered_estimate("tickets:x") == 5000
    assert paging.remembered_estimate("tickets:y") is None


def test_once_expired_one_caller_finds_it_again_while_the_others_keep_the_old_number(
    clock: _Clock,
) -> None:
    paging.remember_estimate("search-names:Moses", 2500)
    clock.now += paging.ESTIMATE_TTL_SECONDS + 1
    assert paging.remembered_estimate("search-names:Moses") is None  # this one counts again
    for _ in range(3):  # the requests that come meanwhile do not
        assert paging.remembered_estimate("search-names:Moses") == 2500
    paging.remember_estimate("search-names:Moses", 2600)
    clock.now += paging.ESTIMATE_TTL_SECONDS - 1
    assert paging.remembered_estimate("search-names:Moses") == 2600


def test_an_expired_number_nobody_found_again_is_dropped_after_the_grace(clock: _Clock) -> None:
    # The request that was to count again failed, or its count stayed under the limit, so it
    # remembered nothing: after the grace the old number is gone, and the next caller counts.
    paging.remember_estimate("tickets:x", 5000)
    clock.now += paging.ESTIMATE_TTL_SECONDS + 1
    assert paging.remembered_estimate("tickets:x") is None
    clock.now += paging.REFRESH_GRACE_SECONDS - 1
    assert paging.remembered_estimate("tickets:x") == 5000
    clock.now += 2
    assert paging.remembered_estimate("tickets:x") is None
    assert paging.remembered_estimate("tickets:x") is None
