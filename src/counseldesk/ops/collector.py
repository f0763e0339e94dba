"""Python's cyclic garbage collector, set up for a long-running server process.

With the interpreter's defaults a busy web process stalled: a young collection runs every 700
allocations, so the objects of the 32 requests in flight at once are promoted again and again,
and the interpreter then runs a full collection over everything alive — about 340,000 objects
(modules, SQLAlchemy's compiled statements, pydantic's schemas), ~250 ms during which no
request moves — every 1.5 s. Measured with 32 clients on the inbox's first page, one web
process: 564 req/s and p99 312 ms with the defaults; 775 req/s and p99 71 ms with a young
threshold of 50,000, with no collection over 5 ms in 30 s (docs/benchmarks.md, "Session 4").

Reference cycles are still collected; they wait a little longer. Most memory is freed by
reference counting as before, whatever these numbers are.
"""

from __future__ import annotations

import gc
import logging

# Allocations between young collections. Requests finish (and free their objects by reference
# counting) well before 50,000 more allocations, so their objects are not promoted.
YOUNG_THRESHOLD = 50_000
# Young collections per middle one, and middle ones per full one (the defaults are 10 and 10).
MIDDLE_THRESHOLD = 20
OLD_THRESHOLD = 20

log = logging.getLogger(__name__)


def tune_for_serving() -> None:
    """Collect young objects less often, so requests in flight are not promoted to old ones."""
    gc.set_threshold(YOUNG_THRESHOLD, MIDDLE_THRESHOLD, OLD_THRESHOLD)


def freeze_startup_objects() -> None:
    """Exclude everything alive once the process has started from future collections.

    Modules, the app, its routes and schemas live as long as the process; scanning them again
    in each full collection only costs time. One full collection first, so no garbage cycle
    is kept forever.
    """
    gc.collect()
    gc.freeze()
    log.info(
        "garbage collector: thresholds %s, %d start-up objects frozen",
        gc.get_threshold(),
        gc.get_freeze_count(),
    )
