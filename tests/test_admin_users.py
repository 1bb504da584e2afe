"""Users & roles: the account operations without HTTP (create, role, projects, deactivate,
password reset, never locking out the last admin, every change audited without secrets),
then the pages, who may use them and CSRF."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from server.audit.models import AuditEvent
from server.auth import operations as ops
from server.auth.models import ApiSession, User
from server.extensions import db
from server.projects.models import ProjectMember
from tests.admin_support import OUTSIDERS, assert_admins_only
from tests.factories import PASSWORD, csrf_protected_client, csrf_token


def events(action: str) -> list[AuditEvent]:
    return list(
        db.session.scalars(
            select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.id)
        )
    )


def member_of(user: User) -> set[int]:
    return set(
        db.session.scalars(select(ProjectMember.project_id).where(ProjectMember.user_id == user.id))
    )


@pytest.fixture
def admin(make) -> User:
    return make.user("admin")


# ---- the operations ---------------------------------------------------------------------


def test_create_gives_a_password_that_logs_in_and_records_no_secret(make, admin):
    project, other = make.project(), make.project("Other")
    user, password = ops.create_account(
        " amina ",
        "collector",
        email="amina@example.org",
        project_ids=[project.id],
        by_user_id=admin.id,
        address="10.0.0.1",
    )
    db.session.commit()
    assert (user.name, user.role, user.email, user.active) == (
        "amina",
        "collector",
        "amina@example.org",
        True,
    )
    assert len(password) >= 15 and ops.authenticate("amina", password) == user
    assert member_of(user) == {project.id} and other.id not in member_of(user)
    [event] = events("user.create")
    assert (event.user_id, event.object_type, event.object_id) == (admin.id, "user", str(user.id))
    assert event.details == {
        "role": "collector",
        "projects": [project.id],
        "email_given": True,
        "via": "page",
    }
    text = repr([(e.details, e.object_id) for e in db.session.scalars(select(AuditEvent))])
    assert password not in text and "amina" not in text


@pytest.mark.parametrize(
    ("name", "role", "email", "problem"),
    [
        ("", "viewer", None, "Name"),
        ("a:b", "viewer", None, "Name"),
        ("x" * 121, "viewer", None, "Name"),
        ("ok", "root", None, "Role"),
        ("ok", "viewer", "not-an-address", "Email"),
    ],
)
def test_create_refuses_unusable_values(admin, name, role, email, problem):
    with pytest.raises(ops.InvalidAccount, match=problem):
        ops.create_account(name, role, email=email, by_user_id=admin.id)


def test_create_refuses_a_taken_name_or_email_and_unknown_projects(make, admin):
    make.user("viewer", name="taken")
    db.session.execute(db.update(User).where(User.name == "taken").values(email="t@example.org"))
    with pytest.raises(ops.UserExists):
        ops.create_account("taken", "viewer", by_user_id=admin.id)
    with pytest.raises(ops.UserExists):
        ops.create_account("new", "viewer", email="t@example.org", by_user_id=admin.id)
    with pytest.raises(ops.InvalidAccount, match="project"):
        ops.create_account("new", "viewer", project_ids=[999], by_user_id=admin.id)


def test_admins_get_no_memberships_they_reach_every_project(make, admin):
    project = make.project()
    user, _ = ops.create_account("boss", "admin", project_ids=[project.id], by_user_id=admin.id)
    assert member_of(user) == set()


def test_role_change_is_audited_with_before_and_after(make, admin):
    user = make.user("viewer")
    ops.change_role(user, "designer", by_user_id=admin.id)
    db.session.commit()
    assert user.role == "designer"
    assert events("user.role")[0].details == {"before": "viewer", "after": "designer"}
    ops.change_role(user, "designer", by_user_id=admin.id)  # no change, no event
    assert len(events("user.role")) == 1
    with pytest.raises(ops.InvalidAccount):
        ops.change_role(user, "superuser", by_user_id=admin.id)


def test_the_last_active_admin_can_be_neither_demoted_nor_deactivated(make, admin):
    with pytest.raises(ops.LastAdmin):
        ops.change_role(admin, "viewer", by_user_id=admin.id)
    with pytest.raises(ops.LastAdmin):
        ops.set_active(admin, False, by_user_id=admin.id)
    second = make.user("admin")
    ops.set_active(second, False, by_user_id=admin.id)  # an inactive admin does not count
    with pytest.raises(ops.LastAdmin):
        ops.change_role(admin, "viewer", by_user_id=admin.id)
    ops.set_active(second, True, by_user_id=admin.id)
    ops.change_role(admin, "viewer", by_user_id=second.id)  # another admin remains
    db.session.commit()
    assert admin.role == "viewer" and second.is_admin and second.active


def test_deactivation_stops_logins_and_tokens_and_reactivation_restores_logins(make, admin):
    user = make.user("viewer")
    ops.open_api_session(user, 3600)
    ops.set_active(user, False, by_user_id=admin.id)
    db.session.commit()
    with pytest.raises(ops.AuthError):
        ops.authenticate(user.name, PASSWORD)
    assert db.session.scalar(select(ApiSession).where(ApiSession.user_id == user.id)) is None
    ops.set_active(user, True, by_user_id=admin.id)
    db.session.commit()
    assert ops.authenticate(user.name, PASSWORD) == user
    assert [e.action for e in db.session.scalars(select(AuditEvent))] == [
        "user.deactivate",
        "user.reactivate",
    ]


def test_password_reset_replaces_the_password_and_ends_api_tokens(make, admin):
    user = make.user("collector")
    token, _ = ops.open_api_session(user, 3600)
    password = ops.reset_password(user, by_user_id=admin.id)
    db.session.commit()
    assert ops.authenticate(user.name, password) == user
    with pytest.raises(ops.AuthError):
        ops.authenticate(user.name, PASSWORD)
    assert ops.user_for_token(token) is None
    [event] = events("user.password_reset")
    assert event.details == {} and password not in repr(event.details)


def test_projects_are_set_exactly_and_the_change_is_audited(make, admin):
    first, second, third = make.project(), make.project("Second"), make.project("Third")
    user = make.user("designer", projects=[first, second])
    ops.set_projects(user, [second.id, third.id], by_user_id=admin.id)
    db.session.commit()
    assert member_of(user) == {second.id, third.id}
    assert events("user.projects")[0].details == {"added": [third.id], "removed": [first.id]}


def test_the_list_shows_role_state_projects_and_the_last_login(make, admin, app):
    project = make.project()
    user = make.user("viewer", name="zoe", projects=[project])
    client = app.test_client()
    client.post("/login", data={"username": "zoe", "password": PASSWORD})
    summaries = {u.name: u for u in ops.list_users()}
    assert summaries["zoe"].last_login is not None and summaries["zoe"].project_ids == [project.id]
    assert summaries[admin.name].last_login is None
    assert [u.id for u in ops.list_users(user.id)] == [user.id]


# ---- the pages ----------------------------------------------------------------------------


@pytest.fixture
def admin_client(app, admin):
    client = app.test_client()
    assert client.post("/login", data={"username": admin.name, "password": PASSWORD}).status == (
        "302 FOUND"
    )
    return client


def test_the_page_creates_a_user_and_shows_the_password_once(app_context, make, admin_client):
    project = make.project()
    page = admin_client.get("/admin/users")
    assert page.status_code == 200 and "Create a user" in page.text
    assert '<a href="/admin/users" aria-current="page">Users</a>' in page.text
    created = admin_client.post(
        "/admin/users",
        data={"name": "amina", "role": "collector", "email": "", "project_id": [project.id]},
    )
    assert created.status_code == 200 and "Password, shown once" in created.text
    password = created.text.split('<code id="new-password">')[1].split("</code>")[0]
    user = db.session.scalar(select(User).where(User.name == "amina"))
    assert user.check_password(password) and member_of(user) == {project.id}
    assert created.headers["Cache-Control"] == "no-store"
    again = admin_client.get(f"/admin/users/{user.id}")
    assert password not in again.text and "Password, shown once" not in again.text
    assert "amina" in admin_client.get("/admin/users").text


def test_a_refused_create_says_why_and_keeps_what_was_typed(app_context, admin_client):
    response = admin_client.post("/admin/users", data={"name": "x:y", "role": "viewer"})
    assert response.status_code == 400 and "no &#39;:&#39;" in response.text
    assert 'value="x:y"' in response.text


def test_role_projects_state_and_password_from_the_user_page(app_context, make, admin_client):
    project = make.project()
    user = make.user("viewer", projects=[])
    base = f"/admin/users/{user.id}"
    response = admin_client.post(f"{base}/role", data={"role": "designer"}, follow_redirects=True)
    assert "is now designer" in response.text
    admin_client.post(f"{base}/projects", data={"project_id": [project.id]})
    admin_client.post(f"{base}/active", data={"active": "0"})
    db.session.expire_all()
    assert (user.role, user.active, member_of(user)) == ("designer", False, {project.id})
    reset = admin_client.post(f"{base}/password")
    assert reset.status_code == 200 and "Password, shown once" in reset.text
    assert admin_client.post(f"{base}/active", data={"active": "maybe"}).status_code == 400
    assert admin_client.get("/admin/users/999").status_code == 404


def test_the_last_admin_is_told_why_they_cannot_lock_everyone_out(app_context, admin, admin_client):
    for url, data in (("role", {"role": "viewer"}), ("active", {"active": "0"})):
        response = admin_client.post(
            f"/admin/users/{admin.id}/{url}", data=data, follow_redirects=True
        )
        assert "the only active administrator" in response.text
    db.session.expire_all()
    assert admin.is_admin and admin.active


@pytest.mark.parametrize(
    ("action", "data"), [("password", {}), ("active", {"active": "0"})], ids=["reset", "deactivate"]
)
def test_a_reset_or_deactivation_logs_out_that_users_open_browser_sessions(
    app, app_context, make, admin_client, action, data
):
    user, bystander = make.user("viewer"), make.user("viewer")
    browsers = {}
    for someone in (user, bystander):
        browsers[someone.name] = app.test_client()
        login = {"username": someone.name, "password": PASSWORD}
        assert browsers[someone.name].post("/login", data=login).status_code == 302
        assert browsers[someone.name].get("/cases").status_code == 200
    changed = admin_client.post(f"/admin/users/{user.id}/{action}", data=data)
    assert changed.status_code in (200, 302)
    ended = browsers[user.name].get("/cases")
    assert ended.status_code == 302 and "/login" in ended.location
    assert browsers[bystander.name].get("/cases").status_code == 200
    assert admin_client.get("/admin/users").status_code == 200  # the admin's own session stays
    if action == "active":  # reactivated: a new login is needed, the old cookie stays dead
        admin_client.post(f"/admin/users/{user.id}/active", data={"active": "1"})
        assert browsers[user.name].get("/cases").status_code == 302


def test_a_session_from_an_earlier_generation_is_refused(make):
    user = make.user("viewer")
    assert ops.session_is_current(user, 0)
    ops.end_sessions(user)
    assert not ops.session_is_current(user, 0) and ops.session_is_current(user, 1)
    assert not ops.session_is_current(user, None) and not ops.session_is_current(None, 1)


URLS = [
    ("get", "/admin/users"),
    ("post", "/admin/users"),
    ("get", "/admin/users/1"),
    ("post", "/admin/users/1/role"),
    ("post", "/admin/users/1/projects"),
    ("post", "/admin/users/1/active"),
    ("post", "/admin/users/1/password"),
]


@pytest.mark.parametrize("outsider", OUTSIDERS)
def test_only_admins_may_see_or_change_users(app, make, outsider):
    assert_admins_only(app, make, outsider, URLS, nav_link="/admin/users")


def test_changes_need_the_csrf_token(make, app, app_context):
    admin = make.user("admin")
    target = make.user("viewer")
    with csrf_protected_client(app, admin.name) as client:
        assert client.post("/admin/users", data={"name": "x", "role": "viewer"}).status_code == 400
        for action, data in (("role", {"role": "admin"}), ("active", {"active": "0"})):
            assert client.post(f"/admin/users/{target.id}/{action}", data=data).status_code == 400
        assert client.post(f"/admin/users/{target.id}/password").status_code == 400
        db.session.expire_all()
        assert (target.role, target.active) == ("viewer", True)
        assert db.session.scalar(select(User).where(User.name == "x")) is None
        token = csrf_token(client.get(f"/admin/users/{target.id}").text)
        response = client.post(
            f"/admin/users/{target.id}/role", data={"role": "designer", "csrf_token": token}
        )
        assert response.status_code == 302
        db.session.expire_all()
        assert target.role == "designer"
