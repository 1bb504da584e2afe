"""The sync page (admins): per peer mission, what waits, what died, what came in; retry;
how many items wait in the review queue (its own page: server/pages/review.py).

The page renders the status once; static/sync.js then polls sync.json and redraws it.
"""

from __future__ import annotations

from flask import abort, current_app, flash, jsonify, redirect, render_template, request, url_for

from server.extensions import db
from server.pages import pages
from server.pages.review import review_counts
from server.security import admin_required, current_user, login_required
from sync.delivery import retry_dead
from sync.status import is_peer, sync_status


@pages.get("/admin/sync")
@login_required
@admin_required
def sync_page():
    return render_template(
        "sync.html",
        status=sync_status(),
        review_counts=review_counts(),
        poll_seconds=current_app.config["QUEUE_PAGE_POLL_SECONDS"],
    )


@pages.get("/admin/sync.json")
@login_required
@admin_required
def sync_data():
    data = sync_status().as_dict()
    for peer in data["peers"]:
        peer["retry_url"] = url_for("pages.retry_sync", mission_code=peer["code"])
    counts = review_counts()
    data["review"] = {"open": sum(counts.values()), "by_kind": counts}
    response = jsonify(data)
    response.headers["Cache-Control"] = "no-store"
    return response


@pages.post("/admin/sync/peers/<mission_code>/retry")
@login_required
@admin_required
def retry_sync(mission_code: str):
    if not is_peer(mission_code):
        abort(404)
    count = retry_dead(
        mission_code, by_user_id=current_user().id, address=request.remote_addr, via="page"
    )
    db.session.commit()
    if count:
        flash(f"{count} change(s) to {mission_code} will be sent again.", "success")
    else:
        flash(f"No dead-lettered changes to {mission_code}.", "warning")
    return redirect(url_for("pages.sync_page"))
