"""`casebridge missions ...`: this mission's signing key, linkage secret, registry of peers."""

from __future__ import annotations

import sys

import click
from flask import current_app
from flask.cli import with_appcontext

from sync.keys import KeyFileError, create_mission_key, mission_key_path, public_key_text
from sync.registry import (
    Registry,
    RegistryError,
    add_mission,
    load_registry,
    make_mission,
    registry_path,
    remove_mission,
    save_registry,
)


@click.group()
def missions() -> None:
    """This mission's key pair, its linkage secret and the registry of linked missions."""


def _registry() -> Registry:
    try:
        return load_registry()
    except RegistryError as error:
        raise click.ClickException(str(error)) from None


@missions.command("init")
@click.option("--name", default=None, help="Also register this mission under this name.")
@click.option("--countries", default=None, help="Countries it serves: THA,LAO (alpha-3).")
@click.option("--url", default=None, help="Its base URL, as peers reach it.")
@with_appcontext
def init_command(name: str | None, countries: str | None, url: str | None) -> None:
    """Make this mission's Ed25519 key pair and print the public key (never the private one).

    With --name, --countries and --url, this mission is also written to the registry, so
    that routing knows the countries it serves.
    """
    own = current_app.config["MISSION_CODE"]
    given = [v is not None for v in (name, countries, url)]
    if any(given) and not all(given):
        raise click.ClickException("Give --name, --countries and --url together, or none.")
    registry = _registry()
    path = mission_key_path()
    try:
        public_key = public_key_text(create_mission_key(path))
    except KeyFileError as error:
        raise click.ClickException(str(error)) from None
    click.echo(f"Mission {own}: private key written to {path} (mode 0600; keep it there).")
    if all(given):
        try:
            mission = make_mission(
                own, name=name, countries=countries, base_url=url, public_key=public_key
            )
            save_registry(add_mission(registry, mission, replace=True))
        except RegistryError as error:
            raise click.ClickException(str(error)) from None
        click.echo(f"Registered {own} in {registry_path()}.")
    click.echo("Public key (give it to each linked mission):")
    click.echo(public_key)


@missions.command("add")
@click.argument("code")
@click.option("--name", required=True)
@click.option("--countries", required=True, help="Countries it serves: THA,LAO (alpha-3).")
@click.option("--url", required=True, help="Its base URL, e.g. https://tha.example.org.")
@click.option("--public-key", required=True, help="Its Ed25519 public key (base64, 32 bytes).")
@click.option(
    "--fields",
    default="",
    help="Case fields this mission may receive, comma separated (default: none).",
)
@click.option("--replace", is_flag=True, help="Replace an entry with the same code.")
@with_appcontext
def add_command(code, name, countries, url, public_key, fields, replace) -> None:
    """Register a linked mission."""
    registry = _registry()
    try:
        mission = make_mission(
            code, name=name, countries=countries, base_url=url, public_key=public_key, fields=fields
        )
        save_registry(add_mission(registry, mission, replace=replace))
    except RegistryError as error:
        raise click.ClickException(str(error)) from None
    click.echo(f"Registered {mission.code} ({', '.join(mission.countries)}).")


@missions.command("remove")
@click.argument("code")
@with_appcontext
def remove_command(code: str) -> None:
    """Remove a mission from the registry; nothing more is sent to or accepted from it."""
    try:
        save_registry(remove_mission(_registry(), code))
    except RegistryError as error:
        raise click.ClickException(str(error)) from None
    click.echo(f"Removed {code}.")


@missions.command("list")
@with_appcontext
def list_command() -> None:
    """One line per mission: code, countries, base URL, fields allowed, name."""
    own = current_app.config["MISSION_CODE"]
    for code, mission in sorted(_registry().missions.items()):
        marker = " (this mission)" if code == own else ""
        allowed = ",".join(sorted(mission.fields)) or "-"
        click.echo(
            f"{code}{marker}\t{','.join(mission.countries)}\t{mission.base_url}\t"
            f"fields={allowed}\t{mission.name}"
        )


@missions.group("linkage-key")
def linkage_key() -> None:
    """The record-linkage secret this mission shares with its linked missions."""


def _replace_secret(secret: bytes, replace: bool) -> None:
    from server.extensions import db
    from sync.linkage_secret import LinkageSecretError, linkage_secret_path, write_linkage_secret
    from sync.linkage_store import mark_all_for_encoding

    path = linkage_secret_path()
    try:
        write_linkage_secret(secret, path, replace=replace)
    except LinkageSecretError as error:
        raise click.ClickException(str(error)) from None
    count = mark_all_for_encoding()
    db.session.commit()
    click.echo(f"Linkage secret written to {path} (mode 0600); never printed.")
    click.echo(f"{count} person(s) will be encoded again (now: `casebridge sync encode`).")


@linkage_key.command("generate")
@click.option("--replace", is_flag=True, help="Replace this mission's secret.")
@with_appcontext
def linkage_key_generate(replace: bool) -> None:
    """Make a new secret (32 random bytes). Copy the file to each linked mission by hand
    or over an encrypted channel, and `linkage-key set` it there."""
    from sync.linkage_secret import fingerprint, new_secret

    secret = new_secret()
    _replace_secret(secret, replace)
    click.echo(f"Fingerprint: {fingerprint(secret)}")


@linkage_key.command("set")
@click.option("--replace", is_flag=True, help="Replace this mission's secret.")
@with_appcontext
def linkage_key_set(replace: bool) -> None:
    """Take the group's secret (base64, as in the file) from standard input."""
    from sync.linkage_secret import LinkageSecretError, fingerprint, parse_secret

    try:
        secret = parse_secret(sys.stdin.read())
    except LinkageSecretError as error:
        raise click.ClickException(str(error)) from None
    _replace_secret(secret, replace)
    click.echo(f"Fingerprint: {fingerprint(secret)}")


@linkage_key.command("show")
@with_appcontext
def linkage_key_show() -> None:
    """The secret's fingerprint (the same on every mission holding it), not the secret."""
    from sync.linkage_secret import (
        LinkageSecretError,
        fingerprint,
        linkage_secret_path,
        load_linkage_secret,
    )

    try:
        secret = load_linkage_secret()
    except LinkageSecretError as error:
        raise click.ClickException(str(error)) from None
    if secret is None:
        click.echo(f"No linkage secret at {linkage_secret_path()}: linkage is off.")
        return
    click.echo(f"Fingerprint: {fingerprint(secret)} ({linkage_secret_path()})")


@click.group("sync")
def sync_commands() -> None:
    """The outbox: what waits to be sent to linked missions, and sending it now."""


@sync_commands.command("status")
@with_appcontext
def status_command() -> None:
    """Changes per peer and state, and the last error of the dead ones."""
    from sync.status import dead_changes, outbox_counts

    for mission, counts in sorted(outbox_counts().items()):
        for state, count in sorted(counts.items()):
            if count:
                click.echo(f"{mission}\t{state}\t{count}")
    for change in dead_changes():
        click.echo(f"dead\t{change.mission}\t{change.change_id}\t{change.error}")


@sync_commands.command("deliver")
@click.argument("code")
@with_appcontext
def deliver_command(code: str) -> None:
    """Send a peer its due changes now (what the worker's job does)."""
    from sync.delivery import deliver_pending
    from sync.keys import KeyFileError

    try:
        report = deliver_pending(code)
    except (KeyFileError, RegistryError) as error:
        raise click.ClickException(str(error)) from None
    click.echo(f"{code}: {report.acked} acked, {report.failed} failed, {report.dead} dead.")


@sync_commands.command("run")
@click.option(
    "--every",
    type=click.FloatRange(min=0.1),
    default=None,
    help="Seconds between looks at the outbox (default: SYNC_POLL_SECONDS).",
)
@with_appcontext
def run_command(every: float | None) -> None:
    """Deliver without a human: queue due deliveries every few seconds (the `sync` process).

    The RQ workers (`casebridge worker`) send them. Stops on SIGTERM or Ctrl-C.
    """
    import logging

    from sync.scheduler import run

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    run(every or current_app.config["SYNC_POLL_SECONDS"])


@sync_commands.command("retry")
@click.argument("code", required=False)
@with_appcontext
def retry_command(code: str | None) -> None:
    """Make dead changes (of one peer, or all) pending again."""
    from server.extensions import db
    from sync.delivery import retry_dead

    count = retry_dead(code)
    db.session.commit()
    click.echo(f"{count} change(s) will be sent again.")


@sync_commands.command("encode")
@with_appcontext
def encode_command() -> None:
    """Encode every person whose linkage encoding is missing or out of date (in bulk; the
    inbox does it too before matching, for the few made since)."""
    from server.extensions import db
    from sync.linkage_store import current_linkage, refresh_encodings

    linkage = current_linkage()
    if linkage is None:
        raise click.ClickException("No linkage secret: `casebridge missions linkage-key ...`.")
    count = refresh_encodings(linkage)
    db.session.commit()
    click.echo(f"{count} person(s) encoded.")
