"""Who is logged in, as plain values, and a short per-process memory of it.

Every dashboard request proves who is asking: its session token is looked up in the session
store (Redis or PostgreSQL) and the counselor's row is read to check the account is still
active. Under load that was the larger part of a page's cost — two round trips and an ORM load
before the page's own query. `IdentityCache` remembers the answer for a few seconds
(`STAFF_IDENTITY_CACHE_SECONDS`), so a counselor clicking through the inbox, or a dashboard
refreshing itself, pays for it once in a while.

What it changes, and how it is bounded:
- Ending sessions — logout, a password change, a deactivation — goes through the session store,
  which forgets them here at once (`forget`, `forget_counselor`): within this process an ended
  session is refused on its very next request, as before.
- Another web process (`WEB_PROCESSES` > 1, or more instances) may accept an ended session for
  up to the cache's seconds. Set `STAFF_IDENTITY_CACHE_SECONDS=0` where that is too long.
- A session whose idle time is due for its sliding refresh is never served from here, so a
  counselor who keeps working keeps their session exactly as without the cache.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from counseldesk.staff.models import Counselor, Role

# An office has tens of counselors, each with a few browsers; this bounds memory if something
# (a script logging in in a loop) creates sessions by the thousand.
MAX_ENTRIES = 10_000


@dataclass(frozen=True, slots=True)
class StaffIdentity:
    """Who is logged in, as plain values: read routes, templates (the layout, error pages
    rendered after the request's transaction rolled back) and the cache hold this, never the
    ORM object, which belongs to one database session."""

    id: int
    email: str
    full_name: str
    role: Role

    @property
    def is_admin(self) -> bool:
        return self.role is Role.ADMIN

    @classmethod
    def of(cls, counselor: Counselor) -> StaffIdentity:
        return cls(counselor.id, counselor.email, counselor.full_name, counselor.role)


@dataclass(frozen=True, slots=True)
class _Entry:
    identity: StaffIdentity
    valid_until: float


class IdentityCache:
    """Session-token digest → StaffIdentity, each entry valid for at most `ttl` seconds."""

    def __init__(
        self,
        ttl: float,
        *,
        max_entries: int = MAX_ENTRIES,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.ttl = ttl
        self.max_entries = max_entries
        self._clock = clock
        self._entries: dict[str, _Entry] = {}
        # Sessions ended here lately, and counselors whose sessions were ended (but for the one
        # kept), each until when: a lookup that was already running, or that read the store
        # before the ending committed, must not put them back.
        self._ended: dict[str, float] = {}
        self._ended_counselors: dict[int, tuple[float, str | None]] = {}

    def get(self, digest: str) -> StaffIdentity | None:
        entry = self._entries.get(digest)
        if entry is None:
            return None
        if entry.valid_until <= self._clock():
            del self._entries[digest]
            return None
        return entry.identity

    def put(self, digest: str, identity: StaffIdentity, *, at_most: float | None = None) -> None:
        """Remember `identity` for `ttl` seconds, or `at_most` seconds if that is sooner (the
        session's next sliding refresh)."""
        lifetime = self.ttl if at_most is None else min(self.ttl, at_most)
        if lifetime <= 0:
            return
        now = self._clock()
        if self._ended.get(digest, now) > now:
            return
        ended = self._ended_counselors.get(identity.id)
        if ended is not None and ended[0] > now and digest != ended[1]:
            return
        self._entries.pop(digest, None)
        while len(self._entries) >= self.max_entries:
            # Dicts keep insertion order: the first entry is the oldest.
            del self._entries[next(iter(self._entries))]
        self._entries[digest] = _Entry(identity, now + lifetime)

    def forget(self, digest: str) -> None:
        self._entries.pop(digest, None)
        if len(self._ended) >= self.max_entries:
            now = self._clock()
            self._ended = {d: until for d, until in self._ended.items() if until > now}
        self._ended[digest] = self._clock() + self.ttl

    def forget_counselor(self, counselor_id: int, *, keep: str | None = None) -> None:
        """Forget every session of a counselor, except the one whose digest is `keep`."""
        for digest in [
            d for d, e in self._entries.items() if e.identity.id == counselor_id and d != keep
        ]:
            del self._entries[digest]
        # One mark per counselor: an office's worth at most.
        self._ended_counselors[counselor_id] = (self._clock() + self.ttl, keep)

    def __len__(self) -> int:
        return len(self._entries)
