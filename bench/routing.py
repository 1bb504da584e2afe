"""Routing benchmark (issue 5): the 2008 caseload routed from THA to its source missions.

    .venv/bin/python bench/routing.py [--cases 13359] [--steady-seconds 60] [--rate 20]
                                      [--sources KHM,MMR,LAO] [--repeat 1] [--keep]

Real deployments as in tests/test_sync_nodes.py (bench/nodes.py): THA and one mission per
source country, each with its own SQLite database, Redis database, instance folder, key and
registry, running the Procfile's `web`, `worker` and `sync` (one process of each kind).
THA may send each peer every field that may travel (all but LOCAL_ONLY); the caseload's
consent decides which cases go. Two measurements per run:

1. Bulk: the caseload received and normalized at THA while THA's sync is stopped, then
   THA's sync started: time until every routed change is acknowledged (the receiver
   acknowledges after it has applied and committed), changes/s. Target <= 60 s at 13,359.
2. Steady: phones post screenings to THA's OpenRosa endpoint at `--rate` per second for
   `--steady-seconds`, everything running; per routed change, the lag from THA's 201 to
   its acknowledgement (THA's `sync_outbox.acked_at`, microseconds, same clock).
   Target p95 < 2 s.

See bench/ROUTING.md.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import signal
import statistics
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # `server`, `bench` when run as a script

import requests  # noqa: E402 - after the path fix above
from sqlalchemy import create_engine, func, select  # noqa: E402

from bench.cases import code_state  # noqa: E402
from bench.nodes import Deployment, wait_until  # noqa: E402
from bench.submissions import (  # noqa: E402
    APP_USER_SNIPPET,
    VENV_BIN,
    Processes,
    group_cpu_seconds,
    machine_info,
    percentile,
    run_checked,
)

TARGET_BULK_S = 60.0  #: the issue's target for 13,359 cases
TARGET_CASES = 13_359
TARGET_LAG_P95_S = 2.0
DESTINATION = "THA"


class BenchTimeout(Exception):
    pass


def _raise_interrupt(signum, _frame):
    raise KeyboardInterrupt(f"signal {signum}")


def _raise_timeout(_signum, _frame):
    raise BenchTimeout("the benchmark ran past its time bound")


# ---- the missions -------------------------------------------------------------------------


def travelling_fields() -> list[str]:
    """Every case field a link may allow: all but the local-only ones."""
    from server.cases.fields import FIELDS

    return sorted(name for name, field in FIELDS.items() if not field.local_only)


def make_missions(args, folder: Path, redis_url: str) -> dict[str, Deployment]:
    """THA and the sources, each knowing the others; THA's schema, forms and admin made by
    `casebridge setup` (the sources get the schema and no forms)."""
    from sync.keys import public_key_text
    from sync.linkage_secret import new_secret
    from sync.registry import Registry, make_mission

    extra = {"PYTHONUNBUFFERED": "1"}
    if args.sync_poll_seconds is not None:
        extra["CASEBRIDGE_SYNC_POLL_SECONDS"] = str(args.sync_poll_seconds)
    codes = [DESTINATION, *args.sources]
    nodes = {
        code: Deployment(
            code,
            folder / code.lower(),
            f"sqlite:///{folder / f'{code.lower()}.sqlite3'}",
            f"{redis_url}?db={index}",
            extra_env=extra,
            one_each=not args.procfile_counts,
        )
        for index, code in enumerate(codes, start=1)
    }
    fields = travelling_fields()
    secret = new_secret()  # one linkage group: the receivers compare persons as in production
    no_forms = folder / "no-forms"
    no_forms.mkdir()
    for node in nodes.values():
        registry = Registry(
            {
                other.code: make_mission(
                    other.code,
                    name=f"Mission {other.code}",
                    countries=[other.code],
                    base_url=other.url,
                    public_key=public_key_text(other.key.public_key()),
                    fields=fields if other.code != node.code else (),
                )
                for other in nodes.values()
            }
        )
        node.write_identity(registry, secret)
    threads = [
        threading.Thread(
            target=run_checked,
            args=(
                [str(VENV_BIN / "casebridge"), "setup"]
                + ([] if node.code == DESTINATION else ["--forms-dir", str(no_forms)]),
                node.env(),
                f"setup of {node.code}",
                600,
            ),
        )
        for node in nodes.values()
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return nodes


# ---- reading the databases ----------------------------------------------------------------


class Reader:
    """Each mission's database, read from here with plain engines (no app)."""

    def __init__(self, nodes: dict[str, Deployment]):
        self.engines = {code: create_engine(node.database_url) for code, node in nodes.items()}

    def scalar(self, code: str, statement):
        with self.engines[code].connect() as connection:
            return connection.execute(statement).scalar()

    def rows(self, code: str, statement) -> list:
        with self.engines[code].connect() as connection:
            return list(connection.execute(statement))

    def waiting_submissions(self) -> int:
        from server.submissions.models import Submission

        return self.scalar(
            DESTINATION,
            select(func.count())
            .select_from(Submission)
            .where(Submission.state.in_(("received", "queued"))),
        )

    def outbox_states(self) -> dict[tuple[str, str], int]:
        """(recipient, state) -> rows in THA's outbox."""
        from sync.models import SyncOutbox

        statement = select(SyncOutbox.recipient_mission, SyncOutbox.state, func.count()).group_by(
            SyncOutbox.recipient_mission, SyncOutbox.state
        )
        return {(r, s): n for r, s, n in self.rows(DESTINATION, statement)}

    def unacked(self) -> int:
        return sum(n for (_, state), n in self.outbox_states().items() if state != "acked")

    def inbox_count(self, code: str) -> int:
        from sync.models import SyncInboxChange

        return self.scalar(code, select(func.count()).select_from(SyncInboxChange))

    def case_count(self, code: str) -> int:
        from server.cases.models import Case

        return self.scalar(code, select(func.count()).select_from(Case))

    def acked_at(self, case_uuids: list[str]) -> list[tuple[str, str, dt.datetime | None]]:
        """(case uuid, recipient, acked_at) of THA's changes for these cases."""
        from sync.models import SyncOutbox

        found = []
        for start in range(0, len(case_uuids), 500):
            found += self.rows(
                DESTINATION,
                select(SyncOutbox.case_uuid, SyncOutbox.recipient_mission, SyncOutbox.acked_at)
                .where(SyncOutbox.case_uuid.in_(case_uuids[start : start + 500]))
                .order_by(SyncOutbox.id),
            )
        return found

    def received_at(self, code: str, case_uuids: list[str]) -> dict[str, dt.datetime]:
        from sync.models import SyncInboxChange

        found = {}
        for start in range(0, len(case_uuids), 500):
            for case_uuid, at in self.rows(
                code,
                select(SyncInboxChange.case_uuid, SyncInboxChange.received_at).where(
                    SyncInboxChange.case_uuid.in_(case_uuids[start : start + 500])
                ),
            ):
                found[case_uuid] = at
        return found

    def close(self) -> None:
        for engine in self.engines.values():
            engine.dispose()


# ---- the two measurements -----------------------------------------------------------------


def cpu_delta(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    return {k: round(after.get(k, 0) - before.get(k, 0), 2) for k in after}


#: Off while the bulk caseload is normalized, so that it waits for THA's sync to start.
DELIVER_ON_COMMIT = "CASEBRIDGE_SYNC_DELIVER_ON_COMMIT"


def bulk(args, nodes: dict[str, Deployment], reader: Reader, groups) -> dict:
    """Load and normalize at THA with its sync stopped; then time THA's sync delivering it."""
    tha = nodes[DESTINATION]
    started = time.monotonic()
    out = run_checked(
        [sys.executable, str(BENCH / "cases.py"), "--load", "--cases", str(args.cases),
         "--seed", str(args.seed)],
        tha.env(), "load", timeout=600 + args.cases * 0.05,
    )  # fmt: skip
    loaded = json.loads(out.strip().splitlines()[-1])
    wait_until(lambda: reader.waiting_submissions() == 0, args.timeout, "normalization at THA", tha)
    normalized_s = round(time.monotonic() - started, 1)
    routed = {r: n for (r, state), n in reader.outbox_states().items() if state == "pending"}
    total = sum(routed.values())
    print(
        f"[bulk] {loaded['received']} submissions ({loaded['generated']['cases']} cases) "
        f"received and normalized at THA in {normalized_s}s; {total} changes routed: {routed}",
        flush=True,
    )
    tha.stop("worker")  # as configured from now on: a commit queues its deliveries
    del tha.extra_env[DELIVER_ON_COMMIT]
    tha.start("worker")
    load_before = [round(x, 2) for x in os.getloadavg()]
    cpu_before, own_before = group_cpu_seconds(groups()), os.times()
    started = time.monotonic()
    tha.start("sync")
    first_ack_s, samples = None, []
    while True:
        left = reader.unacked()
        elapsed = round(time.monotonic() - started, 2)
        samples.append((elapsed, total - left))
        if first_ack_s is None and left < total:
            first_ack_s = elapsed
        if left == 0 or elapsed > args.timeout:
            break
        time.sleep(0.2)
    bulk_s = elapsed if left == 0 else None
    cpu = cpu_delta(cpu_before, group_cpu_seconds(groups()))
    own = os.times()
    cpu["bench (poller)"] = round(own.user + own.system - own_before.user - own_before.system, 2)
    received = {code: reader.inbox_count(code) for code in args.sources}
    states = reader.outbox_states()
    return {
        "loaded": loaded,
        "normalized_s": normalized_s,
        "routed_changes": routed,
        "changes": total,
        "bulk_s": bulk_s,
        "first_ack_s": first_ack_s,
        "changes_per_s": round(total / bulk_s, 1) if bulk_s else None,
        "load_average_before": load_before,
        "load_average_after": [round(x, 2) for x in os.getloadavg()],
        "cpu_s": cpu,
        "cpu_busy_share": round(sum(cpu.values()) / (os.cpu_count() * bulk_s), 3)
        if bulk_s
        else None,
        "outbox_states": {f"{r}/{s}": n for (r, s), n in sorted(states.items())},
        "received_at_sources": received,
        "cases_at_sources": {code: reader.case_count(code) for code in args.sources},
        "checks_ok": left == 0 and all(received[c] == routed.get(c, 0) for c in args.sources),
        "progress": samples[:: max(1, len(samples) // 100)],
    }


def post_screening(url: str, xml: bytes) -> tuple[int, float, float]:
    """One phone's POST, as Collect sends it; (status, sent, answered) in time.time()."""
    sent = time.time()
    response = requests.post(
        url,
        files={"xml_submission_file": ("submission.xml", xml, "text/xml")},
        headers={"X-OpenRosa-Version": "1.0"},
        timeout=60,
    )
    return response.status_code, sent, time.time()


def steady_bodies(count: int, seed: int) -> list:
    """`count` screenings of another seed's caseload: new people, as the phones send them."""
    from bench.caseload import SCREENING, Caseload

    bodies = []
    for sub in Caseload(count, seed=seed):
        if sub.form_id == SCREENING:
            bodies.append(sub)
            if len(bodies) == count:
                break
    return bodies


def lag_summary(lags: list[float]) -> dict:
    values = sorted(lags)
    return {
        "n": len(values),
        "min_s": round(values[0], 3) if values else None,
        "p50_s": round(percentile(values, 50), 3) if values else None,
        "p95_s": round(percentile(values, 95), 3) if values else None,
        "max_s": round(values[-1], 3) if values else None,
    }


class OutboxWatcher(threading.Thread):
    """When each case's first change appears in THA's outbox (normalized and routed), seen
    by polling every `every` s: splits the lag into normalization and delivery."""

    def __init__(self, reader: Reader, every: float = 0.1):
        from sync.models import SyncOutbox

        super().__init__(daemon=True)
        self.reader, self.every, self.model = reader, every, SyncOutbox
        self.last_id = reader.scalar(DESTINATION, select(func.max(SyncOutbox.id))) or 0
        self.seen: dict[str, float] = {}
        self.done = threading.Event()

    def run(self) -> None:
        outbox = self.model
        while not self.done.is_set():
            rows = self.reader.rows(
                DESTINATION,
                select(outbox.id, outbox.case_uuid).where(outbox.id > self.last_id),
            )
            now = time.time()
            for row_id, case_uuid in rows:
                self.seen.setdefault(case_uuid, now)
                self.last_id = max(self.last_id, row_id)
            self.done.wait(self.every)


def steady(args, nodes: dict[str, Deployment], reader: Reader, groups) -> dict:
    """Phones at a steady rate to THA's OpenRosa endpoint; lag from 201 to the peer's ack."""
    tha = nodes[DESTINATION]
    made = json.loads(
        run_checked([sys.executable, "-c", APP_USER_SNIPPET, "cb_screening"], tha.env(), "app user")
        .strip()
        .splitlines()[-1]
    )
    url = f"{tha.url}/v1/key/{made['token']}/projects/{made['project_id']}/submission"
    count = int(args.rate * args.steady_seconds)
    bodies = steady_bodies(count, args.seed + 1)
    posts: list[tuple] = []
    load_before = [round(x, 2) for x in os.getloadavg()]
    cpu_before = group_cpu_seconds(groups())
    print(f"[steady] {count} screenings at {args.rate}/s to THA", flush=True)
    watcher = OutboxWatcher(reader)
    watcher.start()
    with ThreadPoolExecutor(max_workers=32) as pool:
        t0 = time.monotonic() + 0.2
        futures = []
        for index, sub in enumerate(bodies):
            delay = t0 + index / args.rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            futures.append((sub, pool.submit(post_screening, url, sub.xml)))
        for sub, future in futures:
            posts.append((sub, *future.result()))
    posted_s = time.monotonic() - t0
    cpu_posting = cpu_delta(cpu_before, group_cpu_seconds(groups()))
    settle_started = time.monotonic()
    wait_until(
        lambda: reader.waiting_submissions() == 0 and reader.unacked() == 0,
        args.timeout,
        "THA to normalize and deliver the steady submissions",
        tha,
    )
    settle_s = round(time.monotonic() - settle_started, 2)
    watcher.done.set()
    watcher.join()
    answered = {sub.case_uuid: at for sub, status, _, at in posts if status == 201}
    statuses: dict[str, int] = {}
    for _, status, _, _ in posts:
        statuses[str(status)] = statuses.get(str(status), 0) + 1
    changes = reader.acked_at(list(answered))
    lags, by_peer, to_outbox, outbox_to_ack = [], {}, [], []
    for case_uuid, recipient, acked_at in changes:
        if acked_at is None:
            continue
        acked = acked_at.replace(tzinfo=dt.UTC).timestamp()
        lags.append(acked - answered[case_uuid])
        by_peer.setdefault(recipient, []).append(acked - answered[case_uuid])
        if case_uuid in watcher.seen:
            to_outbox.append(watcher.seen[case_uuid] - answered[case_uuid])
            outbox_to_ack.append(acked - watcher.seen[case_uuid])
    receiver_lags = []  # the receivers' own clock column: whole seconds on SQLite
    for code in args.sources:
        peer_uuids = [c for c, r, _ in changes if r == code]
        for case_uuid, at in reader.received_at(code, peer_uuids).items():
            receiver_lags.append(at.replace(tzinfo=dt.UTC).timestamp() - answered[case_uuid])
    response_times = sorted(answered_at - sent for _, _, sent, answered_at in posts)
    return {
        "posts": len(posts),
        "statuses": statuses,
        "rate_achieved": round(len(posts) / posted_s, 2),
        "post_p50_ms": round(percentile(response_times, 50) * 1000, 1),
        "post_p95_ms": round(percentile(response_times, 95) * 1000, 1),
        "routed_changes": len(changes),
        "lag": lag_summary(lags),
        "lag_by_peer": {code: lag_summary(values) for code, values in sorted(by_peer.items())},
        "lag_201_to_outbox": lag_summary(to_outbox),  #: normalization + routing (0.1 s polls)
        "lag_outbox_to_ack": lag_summary(outbox_to_ack),  #: sync poll, queue, delivery, apply
        "lag_receiver_clock_whole_seconds": lag_summary(receiver_lags),
        "settle_after_last_post_s": settle_s,
        "load_average_before": load_before,
        "load_average_after": [round(x, 2) for x in os.getloadavg()],
        "cpu_s": cpu_posting,
    }


def one_run(args, folder: Path, procs: Processes) -> dict:
    from server.redis_local import start_local_redis

    redis_url, redis_process = start_local_redis(folder / "redis")
    procs.adopt("redis", redis_process)
    t0 = time.monotonic()
    nodes = make_missions(args, folder, redis_url)
    print(f"[setup] {', '.join(nodes)} in {time.monotonic() - t0:.1f}s ({folder})", flush=True)
    try:
        return measure(args, nodes, redis_process)
    finally:  # the missions before Redis (procs), or their workers log its loss
        stopping = [threading.Thread(target=node.stop) for node in nodes.values()]
        for thread in stopping:
            thread.start()
        for thread in stopping:
            thread.join()


def measure(args, nodes: dict[str, Deployment], redis_process) -> dict:
    """Start the missions (THA without its sync, and its worker without delivery on commit:
    the caseload waits in the outbox), then the bulk and steady measurements."""
    nodes[DESTINATION].extra_env[DELIVER_ON_COMMIT] = "false"
    for node in nodes.values():
        node.start(*(("web", "worker") if node.code == DESTINATION else ()))
    for node in nodes.values():
        node.wait_until_serving()

    def groups() -> dict[str, int]:
        found = {"redis": redis_process.pid} if redis_process is not None else {}
        for node in nodes.values():
            found.update(node.groups())
        return found

    reader = Reader(nodes)
    try:
        bulk_result = bulk(args, nodes, reader, groups)
        print(
            f"[bulk] {bulk_result['changes']} changes delivered in {bulk_result['bulk_s']}s "
            f"({bulk_result['changes_per_s']}/s); load {bulk_result['load_average_after']}",
            flush=True,
        )
        steady_result = steady(args, nodes, reader, groups) if args.steady_seconds > 0 else None
        if steady_result:
            print(f"[steady] lag {steady_result['lag']}", flush=True)
    finally:
        reader.close()
    for node in nodes.values():
        if "Traceback" in node.logs():
            print(f"warning: {node.code} logged a traceback:\n{node.logs()}", file=sys.stderr)
    return {"bulk": bulk_result, "steady": steady_result}


def median_of(runs: list[dict], *path: str) -> float | None:
    values = []
    for run in runs:
        value = run
        for key in path:
            value = value.get(key) if isinstance(value, dict) else None
        if value is not None:
            values.append(value)
    return round(statistics.median(values), 3) if values else None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", type=int, default=TARGET_CASES)
    parser.add_argument("--steady-seconds", type=float, default=60)
    parser.add_argument("--rate", type=float, default=20, help="steady submissions per second")
    parser.add_argument(
        "--sources", default="KHM,MMR,LAO", help="source missions (each serves its country)"
    )
    parser.add_argument("--repeat", type=int, default=1, help="runs, each on new deployments")
    parser.add_argument("--seed", type=int, default=2008)
    parser.add_argument(
        "--sync-poll-seconds",
        type=float,
        default=None,
        help="an experiment: override SYNC_POLL_SECONDS (default: the config's)",
    )
    parser.add_argument(
        "--procfile-counts",
        action="store_true",
        help="run the Procfile's process counts as written (default one of each per mission)",
    )
    parser.add_argument("--timeout", type=float, default=600, help="bound per wait, s")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folders")
    parser.add_argument("--output", type=Path, default=None, help="JSON file to write")
    args = parser.parse_args(argv)
    args.sources = [c.strip().upper() for c in args.sources.split(",") if c.strip()]

    from config import load_config

    poll = args.sync_poll_seconds or load_config()["SYNC_POLL_SECONDS"]
    signal.signal(signal.SIGINT, _raise_interrupt)
    signal.signal(signal.SIGTERM, _raise_interrupt)
    signal.signal(signal.SIGALRM, _raise_timeout)
    per_run = 900 + args.cases * 0.05 + args.steady_seconds + 2 * args.timeout
    signal.alarm(int(args.repeat * per_run))
    started_at = datetime.now()
    code = code_state()
    runs = []
    try:
        for number in range(1, args.repeat + 1):
            folder = Path(tempfile.mkdtemp(prefix="casebridge-routing-"))
            procs = Processes()
            print(f"== run {number}/{args.repeat}", flush=True)
            try:
                runs.append(one_run(args, folder, procs))
            finally:
                signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not skip it
                procs.stop_all()
                if args.keep:
                    print(f"kept {folder}", file=sys.stderr)
                else:
                    shutil.rmtree(folder, ignore_errors=True)
                signal.signal(signal.SIGINT, _raise_interrupt)
    except BenchTimeout as error:
        print(f"error: {error}; stopped everything", file=sys.stderr)
        return 3
    except KeyboardInterrupt:
        print("\ninterrupted; stopped everything", file=sys.stderr)
        return 130
    finally:
        signal.alarm(0)
    scale = args.cases / TARGET_CASES
    bulk_s = median_of(runs, "bulk", "bulk_s")
    p95 = median_of(runs, "steady", "lag", "p95_s")
    result = {
        "benchmark": "routing",
        "started_at": started_at.isoformat(timespec="seconds"),
        "database": "sqlite",
        "cases": args.cases,
        "destination": DESTINATION,
        "sources": args.sources,
        "rate": args.rate,
        "steady_seconds": args.steady_seconds,
        "sync_poll_seconds": poll,
        "procfile_counts": args.procfile_counts,
        "repeat": args.repeat,
        "machine": machine_info(),
        "code": code,
        "code_changed_during_run": code_state() != code,
        "median": {
            "bulk_s": bulk_s,
            "changes_per_s": median_of(runs, "bulk", "changes_per_s"),
            "lag_p50_s": median_of(runs, "steady", "lag", "p50_s"),
            "lag_p95_s": p95,
            "lag_max_s": median_of(runs, "steady", "lag", "max_s"),
        },
        "target": {
            "bulk_s_max": round(TARGET_BULK_S * scale, 1),
            "bulk_met": bulk_s is not None and bulk_s <= TARGET_BULK_S * scale,
            "lag_p95_s_max": TARGET_LAG_P95_S,
            "lag_met": p95 is not None and p95 < TARGET_LAG_P95_S,
        },
        "runs": runs,
    }
    name = f"routing-{started_at:%Y-%m-%dT%H%M%S}-sqlite-{args.cases}"
    output = args.output or BENCH / "results" / f"{name}.json"
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(result, indent=2, default=str) + "\n")
    print_report(result, output)
    return 0


def print_report(result: dict, output: Path) -> None:
    median, target = result["median"], result["target"]
    print()
    print(
        f"Routing {result['cases']} cases THA -> {','.join(result['sources'])}, "
        f"{result['repeat']} run(s), SYNC_POLL_SECONDS={result['sync_poll_seconds']}"
    )
    for number, run in enumerate(result["runs"], start=1):
        b, s = run["bulk"], run["steady"]
        print(
            f"run {number}: bulk {b['changes']} changes in {b['bulk_s']} s "
            f"({b['changes_per_s']}/s, "
            f"first ack {b['first_ack_s']} s, checks {'ok' if b['checks_ok'] else 'FAILED'}), "
            f"load {b['load_average_before']}; CPU s {b['cpu_s']}"
        )
        if s:
            print(
                f"       steady {s['posts']} posts at {s['rate_achieved']}/s {s['statuses']}, "
                f"{s['routed_changes']} changes; lag {s['lag']}; load {s['load_average_after']}"
            )
    print(
        f"median: bulk {median['bulk_s']} s (target <= {target['bulk_s_max']} s: "
        f"{'met' if target['bulk_met'] else 'MISSED'}); lag p50/p95/max {median['lag_p50_s']} / "
        f"{median['lag_p95_s']} / {median['lag_max_s']} s (target p95 < 2 s: "
        f"{'met' if target['lag_met'] else 'MISSED'})"
    )
    print(f"results: {output}")


if __name__ == "__main__":
    sys.exit(main())
