"""The garbage collector's set-up for server processes (ops/collector.py)."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator

import pytest

from counseldesk.ops import collector


@pytest.fixture
def restored_collector() -> Iterator[None]:
    thresholds = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*thresholds)


class _Node:
    def __init__(self) -> None:
        self.other: _Node | None = None


@pytest.mark.usefixtures("restored_collector")
def test_serving_collects_young_objects_far_less_often() -> None:
    collector.tune_for_serving()

    assert gc.get_threshold()[:2] == (50_000, 20)
    assert gc.isenabled()


@pytest.mark.usefixtures("restored_collector")
def test_freezing_keeps_live_objects_out_of_collections_but_no_garbage_cycle() -> None:
    # A garbage cycle alive only through itself: reference counting alone never frees it.
    first, second = _Node(), _Node()
    first.other, second.other = second, first
    cycle = weakref.ref(first)
    del first, second
    kept = _Node()

    collector.freeze_startup_objects()

    assert cycle() is None, "the cycle was collected before the freeze"
    assert gc.get_freeze_count() > 0
    # Frozen objects are in no generation, so no collection scans them.
    assert gc.is_tracked(kept)
    assert not any(alive is kept for alive in gc.get_objects())
