"""Which of an upsert's fields to take, field by field, by their clocks (sync.clock).

- A field written at the sender only (newer than ours, or ours has no clock): taken.
- A field whose incoming write this case had seen already (older, or the same): kept.
- The same ordinary field written at both ends concurrently: the bigger HLC wins (clock,
  counter, then mission code), so both ends pick the same value; recorded in the version
  (`changes["merged"]`: the field and both clocks, never a value).
- A protected field (status, owner, consent) written at both ends concurrently: no winner.
  The local value stays and the conflict is returned for the review queue (sync.review).
- A field the sender holds back (an open conflict at the owner): kept as it is here, until
  the owner's decision arrives as a newer write.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sync.clock import (
    CONCURRENT,
    NEWER,
    PROTECTED,
    SAME,
    Hlc,
    Received,
    judge,
    local_stamps,
)
from sync.models import SyncCaseClock


@dataclass(frozen=True)
class Conflict:
    """A protected field written at both ends concurrently: its key and both clocks."""

    field: str
    local: Hlc
    incoming: Hlc

    def as_json(self) -> dict:
        return {"field": self.field, "local": str(self.local), "incoming": str(self.incoming)}


@dataclass
class Merge:
    #: Keys whose incoming value is applied, and the clock of each (None: sent without one).
    take: dict[str, Hlc | None] = field(default_factory=dict)
    #: Concurrent ordinary fields: {"field", "kept", "over"}, the winning and losing clocks.
    merged: list[dict] = field(default_factory=list)
    conflicts: list[Conflict] = field(default_factory=list)

    def taken(self) -> dict[str, Hlc]:
        return {k: s for k, s in self.take.items() if s is not None}


def merge(
    clock: SyncCaseClock, sent: Received, keys: set[str], protected: frozenset[str] = PROTECTED
) -> Merge:
    """Decide each of `keys` (the fields an upsert holds values for); see the module.
    `protected`: the keys a person decides here (sync.apply narrows them at a copy)."""
    seen, stamps = local_stamps(clock)
    result = Merge()
    for key in sorted(keys):
        if key in sent.held:
            continue
        local, incoming = stamps.get(key), sent.fields.get(key)
        verdict = judge(local, incoming, seen, sent)
        if verdict in (NEWER, SAME):
            result.take[key] = incoming
        elif verdict == CONCURRENT and key in protected:
            result.conflicts.append(Conflict(key, local, incoming))
        elif verdict == CONCURRENT:
            winner, loser = max(local, incoming), min(local, incoming)
            result.merged.append({"field": key, "kept": str(winner), "over": str(loser)})
            if winner == incoming:
                result.take[key] = incoming
    return result
