"""The review queue page (admins): what sync leaves to a person, accepted or rejected.

A page of its own, linked from the sync page: each item carries its case and candidates,
too much to fit beside the peers' table on a phone. Items show ids, scores and references
only; the case pages they link to show the values, to those allowed, and audit the view.
"""

from __future__ import annotations

from collections.abc import Callable

from flask import abort, flash, redirect, render_template, request, url_for

from server.extensions import db
from server.pages import pages
from server.security import admin_required, current_user, login_required
from sync import review, transfers
from sync.delivery import wake_deliveries
from sync.models import REVIEW_KINDS, SyncReview

#: Items listed a page at a time, oldest first.
PAGE_SIZE = 50
#: Headings of the kinds; a kind not named here reads as its code ("new_kind": "New kind").
KIND_TITLES = {
    "possible_duplicate": "Possible duplicates",
    "conflict": "Conflicts",
    "transfer": "Pending transfers",
    "referral": "Referrals",
}


@pages.app_template_filter("review_kinds")
def review_kinds(kind: str) -> str:
    return KIND_TITLES.get(kind) or kind.replace("_", " ").capitalize()


def review_counts() -> dict[str, int]:
    """Open items per kind, every kind listed (zero too), for this page and the sync page."""
    return {kind: review.count_open(kind) for kind in REVIEW_KINDS}


@pages.get("/admin/sync/review")
@login_required
@admin_required
def review_page():
    kind = request.args.get("kind") or None
    if kind is not None and kind not in REVIEW_KINDS:
        abort(404)
    counts = review_counts()
    total = counts[kind] if kind else sum(counts.values())
    pages = max((total + PAGE_SIZE - 1) // PAGE_SIZE, 1)
    number = min(max(request.args.get("page", 1, type=int), 1), pages)
    return render_template(
        "review.html",
        items=review.open_reviews(kind, limit=PAGE_SIZE, offset=(number - 1) * PAGE_SIZE),
        counts=counts,
        kind=kind,
        total=total,
        number=number,
        pages=pages,
        reasons=transfers.REASONS,
    )


@pages.post("/admin/sync/review/<int:review_id>/accept")
@login_required
@admin_required
def accept_review(review_id: int):
    person_id = request.form.get("person_id", type=int)
    return _decide(
        lambda: review.accept(review_id, current_user(), person_id, address=request.remote_addr)
    )


@pages.post("/admin/sync/review/<int:review_id>/reject")
@login_required
@admin_required
def reject_review(review_id: int):
    return _decide(lambda: review.reject(review_id, current_user(), address=request.remote_addr))


def _decide(decision: Callable[[], SyncReview]):
    """Run one decision and commit it; unknown is 404, already decided is flashed."""
    try:
        decided = decision()
    except review.ReviewNotFound:
        abort(404)
    except review.ReviewClosed as refusal:
        db.session.rollback()
        flash(f"{refusal} Nothing was changed.", "warning")
    else:
        db.session.commit()
        if decided.kind in review.TRANSFER_KINDS:
            wake_deliveries({(decided.details or {}).get("from_mission", "")} - {""})
        flash(_decided_message(decided), "success")
    return redirect(url_for("pages.review_page", kind=request.form.get("kind") or None))


def _decided_message(decided: SyncReview) -> str:
    if decided.kind == review.POSSIBLE_DUPLICATE and decided.state == "accepted":
        return (
            f"Item {decided.id} accepted: the case now belongs to person "
            f"#{decided.chosen_person_id}."
        )
    if decided.kind == review.POSSIBLE_DUPLICATE:
        return f"Item {decided.id} rejected: the persons stay apart and are not proposed again."
    if decided.kind in review.TRANSFER_KINDS:
        owner = (decided.details or {}).get("from_mission", "the owner")
        if decided.state == "rejected":
            return f"Item {decided.id} declined: the case stays with {owner}."
        if decided.kind == "transfer":
            return (
                f"Item {decided.id} accepted: {owner} hands the case over; it is this "
                "mission's once it arrives."
            )
        return f"Item {decided.id} accepted: {owner} shares the case with this mission."
    return f"Item {decided.id} {decided.state}."
