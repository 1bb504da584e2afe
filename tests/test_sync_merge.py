"""Concurrent edits, by their clocks (sync.clock, sync.merge, sync.conflict).

First two ends simulated with the real functions (each a clock and its values), to show
they converge; then this app as KHM, owner of a case THA holds a copy of and follows up,
and as KHM holding a copy of THA's case: merges, conflicts in the review queue, decisions.
"""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import select

from server.cases.models import Case, CaseVersion, Consent, MovementEvent, Person
from server.extensions import db
from sync import review
from sync.clock import Hlc, read_clock, stamp_local, take_in
from sync.merge import merge
from sync.models import SyncCaseClock, SyncOutbox, SyncReview
from sync.outbox import record_case_change
from tests.sync_support import mission, new_key, use_missions
from tests.test_sync_apply import (  # noqa: F401 - tha_key: a fixture used by name
    CASE,
    EVENT,
    deliver,
    tha_key,
    the_case,
    upsert,
)

# ---- two ends, simulated ---------------------------------------------------------------


class End:
    """One mission's values of a case and their clocks: writes, sends, receives."""

    def __init__(self, mission: str):
        self.mission = mission
        self.values: dict[str, object] = {}
        self.clock = SyncCaseClock(case_uuid=CASE, seen={}, fields={}, held=[])

    def write(self, **values: object) -> None:
        self.values.update(values)
        stamp_local(self.clock, values, self.mission)

    def send(self) -> tuple[dict, dict]:
        return dict(self.values), {"seen": self.clock.seen, "fields": self.clock.fields}

    def receive(self, message: tuple[dict, dict]):
        values, clock = message
        sent = read_clock(clock)
        decided = merge(self.clock, sent, set(values))
        self.values.update({k: v for k, v in values.items() if k in decided.take})
        take_in(self.clock, sent, decided.taken())
        return decided


@pytest.fixture
def wall(monkeypatch) -> list[int]:
    """The wall clock both ends read, in ms; tests move it."""
    now = [1_764_000_000_000]
    monkeypatch.setattr("sync.clock.now_ms", lambda: now[0])
    return now


def test_sequential_edits_the_newer_wins_silently(wall):
    tha, khm = End("THA"), End("KHM")
    tha.write(cas_ReintegrationStatus="Shelter")
    khm.receive(tha.send())
    wall[0] -= 5_000  # KHM's clock is behind: causality, not the wall clock, decides
    khm.write(cas_ReintegrationStatus="Home")
    decided = tha.receive(khm.send())
    assert decided.merged == [] and decided.conflicts == []
    assert tha.values == khm.values == {"cas_ReintegrationStatus": "Home"}
    assert tha.receive(khm.send()).take.keys() == {"cas_ReintegrationStatus"}  # the same again
    assert khm.receive(tha.send()).merged == []


def test_concurrent_edits_of_different_fields_are_both_kept_at_both_ends(wall):
    tha, khm = End("THA"), End("KHM")
    tha.write(cas_ReintegrationStatus="Shelter", cas_FollowUpDate="2026-12-01")
    khm.receive(tha.send())
    tha.write(cas_ReintegrationStatus="Home")
    wall[0] += 1
    khm.write(cas_FollowUpDate="2026-12-15")
    to_khm, to_tha = tha.send(), khm.send()
    khm.receive(to_khm)
    tha.receive(to_tha)
    assert (
        tha.values
        == khm.values
        == {
            "cas_ReintegrationStatus": "Home",
            "cas_FollowUpDate": "2026-12-15",
        }
    )
    assert tha.clock.fields == khm.clock.fields


@pytest.mark.parametrize("later", ["THA", "KHM"])
def test_the_same_ordinary_field_at_both_ends_converges_on_the_later_clock(wall, later):
    tha, khm = End("THA"), End("KHM")
    tha.write(cas_ReintegrationStatus="Shelter")
    khm.receive(tha.send())
    for end in (tha, khm) if later == "KHM" else (khm, tha):
        end.write(cas_ReintegrationStatus=f"by {end.mission}")
        wall[0] += 1
    to_khm, to_tha = tha.send(), khm.send()
    at_khm, at_tha = khm.receive(to_khm), tha.receive(to_tha)
    assert tha.values == khm.values == {"cas_ReintegrationStatus": f"by {later}"}
    [merged] = at_tha.merged
    assert at_khm.merged == [merged] and Hlc.parse(merged["kept"]).mission == later


def test_the_same_clock_at_both_ends_is_settled_by_mission_code(wall):
    tha, khm = End("THA"), End("KHM")
    tha.write(cas_ReintegrationStatus="by THA")
    khm.write(cas_ReintegrationStatus="by KHM")  # same ms, same counter
    to_khm, to_tha = tha.send(), khm.send()
    khm.receive(to_khm)
    tha.receive(to_tha)
    assert tha.values == khm.values == {"cas_ReintegrationStatus": "by THA"}  # "THA" > "KHM"


def test_a_concurrent_status_change_is_a_conflict_at_both_ends_and_nothing_moves(wall):
    tha, khm = End("THA"), End("KHM")
    tha.write(cas_Status="Active")
    khm.receive(tha.send())
    tha.write(cas_Status="Closed")
    wall[0] += 1
    khm.write(cas_Status="FollowUp")
    to_khm, to_tha = tha.send(), khm.send()
    at_khm, at_tha = khm.receive(to_khm), tha.receive(to_tha)
    assert [c.field for c in at_tha.conflicts] == [c.field for c in at_khm.conflicts]
    assert [c.field for c in at_tha.conflicts] == ["cas_Status"]
    assert (tha.values["cas_Status"], khm.values["cas_Status"]) == ("Closed", "FollowUp")


# ---- this app as KHM, owner of the case ------------------------------------------------


def stamp(wall_ms: int, mission: str = "THA", counter: int = 0) -> str:
    return str(Hlc(wall_ms, counter, mission))


def follow_up(version: int, fields: dict, stamps: dict, seen: dict) -> dict:
    """THA's follow-up of KHM's case: what THA changed, with its clocks."""
    change = upsert(version, fields, owner="KHM")
    change["payload"]["clock"] = {"seen": seen, "fields": stamps, "held": []}
    return change


class Khm:
    """This app as KHM: local writes of the case, stamped as a normalization's are (the
    outbox stamps them), and THA's changes delivered to its inbox."""

    def __init__(self, client, key, monkeypatch):
        self.client, self.tha_key, self.monkeypatch = client, key, monkeypatch

    def write(self, at: int, **fields: str) -> str:
        """Write fields at wall clock ms `at`; the stamp it got."""
        self.monkeypatch.setattr("sync.clock.now_ms", lambda: at)
        case = the_case()
        case.status = fields.get("cas_Status", case.status)
        case.reintegration_status = fields.get("cas_ReintegrationStatus", case.reintegration_status)
        case.version += 1
        version = CaseVersion(
            case=case, version=case.version, changes={"fields": fields, "records": []}
        )
        db.session.add(version)
        db.session.flush()
        record_case_change(db.session, case, version, own_mission="KHM")
        db.session.commit()
        return clock().seen["KHM"]

    def receive(self, *changes: dict) -> list[str]:
        return deliver(self.client, self.tha_key, *changes)


@pytest.fixture
def khm(app, client, tha_key, app_context, make, monkeypatch, tmp_path) -> Khm:  # noqa: F811
    """KHM's case, shared with THA, which may receive its status and reintegration."""
    allowed = ("cas_Status", "cas_ReintegrationStatus")
    use_missions(
        monkeypatch,
        app,
        tmp_path,
        "KHM",
        [mission("THA", tha_key, allowed), mission("KHM", new_key())],
    )
    project = make.project()
    db.session.add(
        Case(
            uuid=CASE,
            project_id=project.id,
            person=Person(uuid=str(uuid.uuid4()), citizenship=["KHM"]),
            owner_mission="KHM",
            status="Active",
            version=0,
            movement_events=[MovementEvent(uuid=EVENT, type="Exploitation", country="THA")],
            consents=[Consent(uuid=str(uuid.uuid4()), given=True, sharing=True)],
        )
    )
    db.session.commit()
    return Khm(client, tha_key, monkeypatch)


def clock() -> SyncCaseClock:
    db.session.expire_all()
    return db.session.get(SyncCaseClock, CASE)


def sent_to_tha() -> SyncOutbox:
    return db.session.scalars(select(SyncOutbox).order_by(SyncOutbox.id.desc())).first()


def test_khm_s_upserts_carry_the_clocks_of_the_fields_they_hold(khm):
    k1 = khm.write(1_000, cas_Status="Active", cas_ReintegrationStatus="Shelter")
    payload = sent_to_tha().payload
    assert payload["clock"]["seen"] == {"KHM": k1}
    assert payload["clock"]["fields"]["cas_Status"] == k1
    assert payload["clock"]["held"] == []


def test_a_follow_up_made_after_seeing_khm_s_write_is_taken_silently(khm):
    k1 = khm.write(1_000, cas_ReintegrationStatus="Shelter")
    t1 = stamp(2_000)
    change = follow_up(
        2, {"cas_ReintegrationStatus": "Home"}, {"cas_ReintegrationStatus": t1}, {"KHM": k1}
    )
    assert khm.receive(change) == ["applied"]
    case = the_case()
    assert case.reintegration_status == "Home"
    assert "merged" not in case.versions[-1].changes and case.versions[-1].conflicts == []
    assert clock().fields["cas_ReintegrationStatus"] == t1 and clock().seen["THA"] == t1
    assert sent_to_tha().payload["clock"]["fields"]["cas_ReintegrationStatus"] == t1
    assert review.count_open() == 0


@pytest.mark.parametrize(("tha_at", "kept"), [(2_000, "Home"), (500, "Shelter")])
def test_the_same_field_written_concurrently_takes_the_later_clock_and_says_so(khm, tha_at, kept):
    khm.write(1_000, cas_ReintegrationStatus="Shelter")
    t1 = stamp(tha_at)
    change = follow_up(2, {"cas_ReintegrationStatus": "Home"}, {"cas_ReintegrationStatus": t1}, {})
    assert khm.receive(change) == ["applied"]
    case = the_case()
    assert case.reintegration_status == kept
    [merged] = case.versions[-1].changes["merged"]
    assert merged["field"] == "cas_ReintegrationStatus"
    assert {Hlc.parse(merged["kept"]).mission, Hlc.parse(merged["over"]).mission} == {
        "KHM",
        "THA",
    }
    assert "Home" not in repr(merged) and "Shelter" not in repr(merged)
    assert review.count_open() == 0, "an ordinary field needs no one"


def status_conflict(khm: Khm) -> tuple[str, str, dict]:
    """KHM closes the case while THA, not having seen it, sets it to follow-up."""
    k0 = khm.write(1_000, cas_Status="Active")
    k1 = khm.write(2_000, cas_Status="Closed")
    t1 = stamp(3_000)
    change = follow_up(
        2,
        {"cas_Status": "FollowUp", "cas_ReintegrationStatus": "Home"},
        {"cas_Status": t1, "cas_ReintegrationStatus": t1},
        {"KHM": k0},
    )
    assert khm.receive(change) == ["applied"]
    return k1, t1, change


def test_a_concurrent_status_change_goes_to_review_and_nothing_is_overwritten(khm):
    k1, t1, _ = status_conflict(khm)
    case = the_case()
    assert case.status == "Closed", "the local value stays"
    assert case.reintegration_status == "Home", "the ordinary field still merges"
    assert case.versions[-1].conflicts == ["cas_Status"]
    [item] = review.open_reviews("conflict")
    assert item.case.uuid == CASE and item.candidates == []
    [field] = item.conflicts
    assert (field.field, field.local_mission, field.incoming_mission) == (
        "cas_Status",
        "KHM",
        "THA",
    )
    assert (field.local_clock, field.incoming_clock) == (k1, t1)
    assert item.reason == f"cas_Status: KHM {k1} / THA {t1}"
    assert "Closed" not in repr(item) and "FollowUp" not in repr(item)
    held = sent_to_tha().payload["clock"]
    assert held["held"] == ["cas_Status"], "THA is told to keep its value until decided"


def test_accepting_a_conflict_takes_the_incoming_value_and_sends_the_decision(khm, make):
    k1, t1, _ = status_conflict(khm)
    [item] = review.open_reviews("conflict")
    review.accept(item.id, make.user("admin"))
    db.session.commit()
    case = the_case()
    assert case.status == "FollowUp"
    assert case.versions[-1].changes["review"] == {"id": item.id, "kept": "incoming"}
    decision = sent_to_tha().payload
    assert decision["case"]["fields"]["cas_Status"] == "FollowUp"
    decided = Hlc.parse(decision["clock"]["fields"]["cas_Status"])
    assert decided > Hlc.parse(t1) and decided > Hlc.parse(k1) and decided.mission == "KHM"
    assert decision["clock"]["seen"]["THA"] == t1, "newer than both writes, at THA too"
    assert decision["clock"]["held"] == [] and review.count_open() == 0
    assert db.session.scalar(select(SyncReview.state)) == "accepted"


def test_rejecting_a_conflict_keeps_the_local_value_and_sends_it_as_the_decision(khm, make):
    _, t1, _ = status_conflict(khm)
    [item] = review.open_reviews("conflict")
    review.reject(item.id, make.user("admin"))
    db.session.commit()
    assert the_case().status == "Closed"
    decision = sent_to_tha().payload
    assert decision["case"]["fields"]["cas_Status"] == "Closed"
    assert Hlc.parse(decision["clock"]["fields"]["cas_Status"]) > Hlc.parse(t1)
    with pytest.raises(review.ReviewClosed):
        review.accept(item.id, make.user("admin"))


def test_replays_and_late_changes_open_nothing_twice(khm):
    _, _, change = status_conflict(khm)
    versions = the_case().version
    assert khm.receive(change) == ["duplicate"]
    older = follow_up(1, {"cas_Status": "Active"}, {"cas_Status": stamp(2_500)}, {})
    assert khm.receive(older) == ["stale"]
    assert the_case().version == versions and review.count_open() == 1
    again = follow_up(3, {"cas_Status": "ClosedReferred"}, {"cas_Status": stamp(4_000)}, {})
    assert khm.receive(again) == ["applied"]
    [item] = review.open_reviews("conflict")
    assert item.conflicts[0].incoming_clock == stamp(4_000), "the newest incoming write"


def test_a_bad_clock_or_one_far_ahead_refuses_the_change(khm, monkeypatch):
    change = follow_up(2, {"cas_Status": "Closed"}, {"cas_Status": "yesterday"}, {})
    assert khm.receive(change) == ["invalid"]
    monkeypatch.setattr("sync.clock.now_ms", lambda: 1_764_000_000_000)
    ahead = stamp(1_764_000_000_000 + 3_600_000)
    change = follow_up(2, {"cas_Status": "Closed"}, {"cas_Status": ahead}, {"THA": ahead})
    assert khm.receive(change) == ["invalid"]
    assert the_case().status == "Active"


# ---- this app as KHM, holding a copy of THA's case -------------------------------------


def owners_upsert(version: int, fields: dict, stamps: dict, seen: dict, held=()) -> dict:
    change = upsert(version, fields)
    change["payload"]["clock"] = {"seen": seen, "fields": stamps, "held": list(held)}
    return change


@pytest.fixture
def copy(app, client, tha_key, app_context, monkeypatch, tmp_path) -> Khm:  # noqa: F811
    """THA's case held at KHM, status Active at THA's clock 1000; KHM may send THA its
    status (so that THA can review a concurrent one)."""
    use_missions(
        monkeypatch,
        app,
        tmp_path,
        "KHM",
        [mission("THA", tha_key, ("cas_Status",)), mission("KHM", new_key())],
    )
    t0 = stamp(1_000)
    first = owners_upsert(
        1, {"cas_Status": "Active"}, {"cas_Status": t0, "consent": t0}, {"THA": t0}
    )
    assert deliver(client, tha_key, first) == ["applied"]
    return Khm(client, tha_key, monkeypatch)


def test_at_a_copy_a_concurrent_status_stays_until_the_owner_decides(copy):
    copy.write(2_000, cas_Status="Closed")
    concurrent = owners_upsert(
        2, {"cas_Status": "FollowUp"}, {"cas_Status": stamp(3_000)}, {"THA": stamp(3_000)}
    )
    assert copy.receive(concurrent) == ["applied"]
    assert the_case().status == "Closed" and the_case().versions[-1].conflicts == ["cas_Status"]
    assert review.count_open() == 0, "the owner holds the review"
    held = owners_upsert(
        3,
        {"cas_Status": "FollowUp"},
        {"cas_Status": stamp(3_000)},
        {"THA": stamp(4_000), "KHM": clock().seen["KHM"]},
        held=["cas_Status"],
    )
    assert copy.receive(held) == ["applied"]
    assert the_case().status == "Closed", "held at the owner: not taken while reviewed"
    decided = owners_upsert(
        4,
        {"cas_Status": "Closed"},
        {"cas_Status": stamp(5_000)},
        {"THA": stamp(5_000), "KHM": clock().seen["KHM"]},
    )
    assert copy.receive(decided) == ["applied"]
    assert the_case().status == "Closed" and clock().fields["cas_Status"] == stamp(5_000)


def test_at_a_copy_a_concurrent_consent_change_is_reviewed_there(copy, make):
    copy.monkeypatch.setattr("sync.clock.now_ms", lambda: 2_000)
    case = the_case()
    case.consents.append(Consent(uuid=str(uuid.uuid4()), given=True, sharing=False))
    case.version += 1
    version = CaseVersion(
        case=case, version=case.version, changes={"fields": {"con_Sharing": False}}
    )
    db.session.add(version)
    db.session.flush()
    record_case_change(db.session, case, version, own_mission="KHM")
    db.session.commit()
    t1 = stamp(3_000)
    change = owners_upsert(2, {}, {"consent": t1}, {"THA": t1})
    change["payload"]["consent"] = {"purposes": ["CaseManagement", "Research"]}
    assert copy.receive(change) == ["applied"]
    assert the_case().consent.sharing is False, "the local statement stays"
    [item] = review.open_reviews("conflict")
    assert [f.field for f in item.conflicts] == ["consent"]
    review.accept(item.id, make.user("admin"))
    db.session.commit()
    consent = the_case().consent
    assert consent.sharing is True and consent.purposes == ["CaseManagement", "Research"]


def test_at_a_copy_a_status_the_owner_never_receives_merges_by_clock(copy, tmp_path, app):
    """KHM may not send THA its status: THA could never review a conflict, so the later
    write wins, as for an ordinary field, and the copy follows its owner again."""
    use_missions(
        copy.monkeypatch,
        app,
        tmp_path,
        "KHM",
        [mission("THA", copy.tha_key), mission("KHM", new_key())],
    )
    copy.write(2_000, cas_Status="Closed")
    later = owners_upsert(
        2, {"cas_Status": "FollowUp"}, {"cas_Status": stamp(3_000)}, {"THA": stamp(3_000)}
    )
    assert copy.receive(later) == ["applied"]
    assert the_case().status == "FollowUp" and review.count_open() == 0
    assert the_case().versions[-1].conflicts == []
