"""The queue page (admins): the submission queue's status, and retry / discard of failures.

The page renders the status once; static/queue.js then polls queue.json and redraws it.
"""

from __future__ import annotations

from flask import (
    abort,
    current_app,
    flash,
    jsonify,
    redirect,
    render_template,
    request,
    url_for,
)

from server.admin import operations as ops
from server.admin.queue_status import queue_status
from server.extensions import db
from server.pages import pages
from server.security import admin_required, current_user, login_required


@pages.app_template_filter("duration")
def duration(seconds: int) -> str:
    """A wait as people say it: "45 s", "3 min 20 s", "2 h 5 min", "3 d 4 h" (as queue.js)."""
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    days, hours = divmod(hours, 24)
    if days:
        return f"{days} d {hours} h"
    if hours:
        return f"{hours} h {minutes} min"
    if minutes:
        return f"{minutes} min {secs} s"
    return f"{secs} s"


@pages.get("/admin/queue")
@login_required
@admin_required
def queue_page():
    return render_template(
        "queue.html",
        status=queue_status(),
        poll_seconds=current_app.config["QUEUE_PAGE_POLL_SECONDS"],
    )


@pages.get("/admin/queue.json")
@login_required
@admin_required
def queue_data():
    data = queue_status().as_dict()
    for item in data["failed"]:
        item["retry_url"] = url_for("pages.retry_submission", submission_id=item["submission_id"])
        item["discard_url"] = url_for(
            "pages.discard_submission", submission_id=item["submission_id"]
        )
    response = jsonify(data)
    response.headers["Cache-Control"] = "no-store"
    return response


@pages.post("/admin/queue/submissions/<int:submission_id>/retry")
@login_required
@admin_required
def retry_submission(submission_id: int):
    try:
        state = ops.retry_failed(submission_id, current_user().id, request.remote_addr)
    except ops.SubmissionMissing:
        abort(404)
    except ops.NotFailed as refusal:
        db.session.rollback()
        flash(str(refusal), "warning")
    else:
        if state == "received":
            flash(
                f"Submission {submission_id} will be queued when the queue is reachable again.",
                "warning",
            )
        else:
            flash(f"Submission {submission_id} is queued again.", "success")
    return redirect(url_for("pages.queue_page"))


@pages.post("/admin/queue/submissions/<int:submission_id>/discard")
@login_required
@admin_required
def discard_submission(submission_id: int):
    try:
        ops.discard_failed(submission_id, current_user().id, request.remote_addr)
    except ops.SubmissionMissing:
        abort(404)
    except ops.NotFailed as refusal:
        db.session.rollback()
        flash(str(refusal), "warning")
    else:
        db.session.commit()
        flash(f"Submission {submission_id} was discarded. It is kept, not processed.", "success")
    return redirect(url_for("pages.queue_page"))
