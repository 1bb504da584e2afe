"""Clocks on every change: what tells a concurrent edit from a newer one.

Each write is stamped with a **hybrid logical clock** (HLC): wall-clock milliseconds, a
counter, and the mission that wrote it, as a text that sorts in that order
(`0001764326400000.000000.THA`). Per case this mission keeps (SyncCaseClock) the HLC of
the last write of each field (`fields`) and, per mission, the newest of its HLCs the case
has taken in (`seen`): a version vector whose entries are HLCs. Every upsert carries both
(`payload["clock"]`), with the field keys it holds back while a conflict is reviewed.

Why an HLC per field plus a vector of HLCs, rather than one or the other:
- HLCs alone give every mission the same total order (clock, then counter, then mission
  code), so a field written at both ends converges on one value with no coordination;
  but a bigger HLC does not say the writer *knew* the other value.
- The vector says what the writer knew: it had seen a write if its `seen` entry for that
  write's mission is at least that write's HLC. Using HLCs as the vector's entries spares
  a second counter, and a write made after seeing another always has a bigger HLC.

So for one field, local write L and incoming write I (see `judge`): equal → same; I > L
and the sender had seen L → newer; I < L and this case had seen I → older; otherwise
concurrent, where ordinary fields take the bigger HLC (both ends pick the same) and
protected ones (PROTECTED) wait for a person's review. A field whose last write carries no
clock (written before clocks, or while this mission had no peers) loses to one that does.

The clock is kept per case, not per mission: a new stamp is after the wall clock and after
every stamp the case has seen (the HLC rule), and stamps are only ever compared within one
case, so no counter is shared between processes. Versions numbered per origin
(SyncAppliedVersion) still order and deduplicate the changes themselves.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy.orm import Session

from sync.models import SyncCaseClock

#: Field keys whose concurrent writes are never settled by a clock: a person decides.
STATUS, OWNER, CONSENT = "cas_Status", "owner_mission", "consent"
PROTECTED = frozenset({STATUS, OWNER, CONSENT})
HLC_TEXT = re.compile(r"^(\d{13})\.(\d{6})\.([A-Z][A-Z0-9_-]{1,15})$")
SAME, NEWER, OLDER, CONCURRENT = "same", "newer", "older", "concurrent"


class BadClock(ValueError):
    """A received clock that is not one."""


@dataclass(frozen=True, order=True)
class Hlc:
    wall_ms: int
    counter: int
    mission: str

    def __str__(self) -> str:
        return f"{self.wall_ms:013d}.{self.counter:06d}.{self.mission}"

    @classmethod
    def parse(cls, text: object) -> Hlc:
        match = HLC_TEXT.match(text) if isinstance(text, str) else None
        if match is None:
            raise BadClock("not a hybrid logical clock")
        return cls(int(match[1]), int(match[2]), match[3])


def now_ms() -> int:
    """The wall clock, in milliseconds (a function so that tests can move it)."""
    return time.time_ns() // 1_000_000


def field_keys(changes: dict) -> set[str]:
    """The keys a CaseVersion's `changes` wrote: case-level field names, `consent` for any
    consent field, and `dataset/record uuid/field` for a child record's fields."""
    keys = {CONSENT if name.startswith("con_") else name for name in changes.get("fields") or {}}
    for record in changes.get("records") or []:
        keys.update(f"{record['dataset']}/{record['uuid']}/{n}" for n in record.get("fields") or {})
    return keys


def payload_keys(payload: dict) -> set[str]:
    """The keys an upsert's payload holds values for (its consent included)."""
    keys = set((payload.get("case") or {}).get("fields") or {})
    for record in payload.get("records") or []:
        keys.update(f"{record['dataset']}/{record['uuid']}/{n}" for n in record.get("fields") or {})
    if "consent" in payload:
        keys.add(CONSENT)
    return keys


def load_clock(session: Session, case_uuid: str) -> SyncCaseClock:
    """The case's clock row, made (in the session) if it has none."""
    clock = session.get(SyncCaseClock, case_uuid)
    if clock is None:
        clock = SyncCaseClock(case_uuid=case_uuid, seen={}, fields={}, held=[])
        session.add(clock)
    return clock


def next_stamp(clock: SyncCaseClock, mission: str) -> Hlc:
    """A stamp after the wall clock and after every stamp this case has seen."""
    latest = max((Hlc.parse(s) for s in clock.seen.values()), default=None)
    wall = now_ms()
    if latest is None or wall > latest.wall_ms:
        return Hlc(wall, 0, mission)
    return Hlc(latest.wall_ms, latest.counter + 1, mission)


def stamp_local(clock: SyncCaseClock, keys: Iterable[str], mission: str) -> Hlc | None:
    """Stamp a local write of `keys`; None (and nothing written) if there are none."""
    keys = sorted(keys)
    if not keys:
        return None
    stamp = next_stamp(clock, mission)
    clock.fields = {**clock.fields, **dict.fromkeys(keys, str(stamp))}
    clock.seen = {**clock.seen, mission: str(stamp)}
    return stamp


def clock_payload(clock: SyncCaseClock, payload: dict) -> dict:
    """What an upsert carries: the vector, the stamps of the keys it holds, the held keys."""
    keys = payload_keys(payload)
    return {
        "seen": dict(clock.seen),
        "fields": {k: v for k, v in clock.fields.items() if k in keys},
        "held": sorted(k for k in clock.held if k in keys),
    }


@dataclass(frozen=True)
class Received:
    """An upsert's clock, checked."""

    seen: dict[str, Hlc]
    fields: dict[str, Hlc]
    held: frozenset[str]


def read_clock(data: object, *, max_ahead_ms: int | None = None) -> Received:
    """A received `payload["clock"]`; an upsert from before clocks has none (all empty).

    A stamp more than `max_ahead_ms` ahead of this clock is refused: one mission's clock far
    ahead would win every merge and drag every later stamp of the case with it."""
    if data is None:
        return Received({}, {}, frozenset())
    if not isinstance(data, dict):
        raise BadClock("clock: an object")
    seen, fields, held = data.get("seen", {}), data.get("fields", {}), data.get("held", [])
    if not (isinstance(seen, dict) and isinstance(fields, dict) and isinstance(held, list)):
        raise BadClock("clock: seen, fields and held")
    if not all(isinstance(k, str) for k in [*seen, *fields, *held]):
        raise BadClock("clock: keys are texts")
    received = Received(
        {m: Hlc.parse(s) for m, s in seen.items()},
        {k: Hlc.parse(s) for k, s in fields.items()},
        frozenset(held),
    )
    latest = max([*received.seen.values(), *received.fields.values()], default=None)
    if max_ahead_ms is not None and latest is not None and latest.wall_ms > now_ms() + max_ahead_ms:
        raise BadClock("clock: in the future")
    return received


def covers(seen: dict[str, Hlc], stamp: Hlc) -> bool:
    """Whoever holds `seen` had taken in the write stamped `stamp`."""
    known = seen.get(stamp.mission)
    return known is not None and known >= stamp


def judge(local: Hlc | None, incoming: Hlc | None, seen: dict[str, Hlc], sent: Received) -> str:
    """How the incoming write of one field stands to the local one (see the module)."""
    if incoming is None:  # no clocks on either side: as before clocks, the sender's value
        return NEWER if local is None else OLDER
    if local is None or incoming == local:
        return NEWER if local is None else SAME
    if incoming > local:
        return NEWER if covers(sent.seen, local) else CONCURRENT
    return OLDER if covers(seen, incoming) else CONCURRENT


def take_in(clock: SyncCaseClock, sent: Received, taken: dict[str, Hlc]) -> None:
    """After applying: the taken fields' stamps, and the sender's vector merged into ours."""
    seen = {m: Hlc.parse(s) for m, s in clock.seen.items()}
    for mission, stamp in [*sent.seen.items(), *((s.mission, s) for s in taken.values())]:
        if mission not in seen or stamp > seen[mission]:
            seen[mission] = stamp
    clock.seen = {m: str(s) for m, s in sorted(seen.items())}
    clock.fields = {**clock.fields, **{k: str(s) for k, s in taken.items()}}


def local_stamps(clock: SyncCaseClock) -> tuple[dict[str, Hlc], dict[str, Hlc]]:
    """The case's vector and field stamps, parsed."""
    return (
        {m: Hlc.parse(s) for m, s in clock.seen.items()},
        {k: Hlc.parse(s) for k, s in clock.fields.items()},
    )
