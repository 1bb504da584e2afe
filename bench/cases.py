"""Normalization benchmark: a 2008-size caseload drained by the Procfile's worker(s).

    .venv/bin/python bench/cases.py [--cases 13359] [--workers 1|2]
                                    [--database sqlite|postgresql] [--keep] [--output FILE]
    .venv/bin/python bench/cases.py --cases 2000 --profile    # cProfile one worker, per job

One temporary instance: a local redis-server, the database, `casebridge setup` (publishes
xlsforms/), then the caseload of bench/caseload.py received in-process exactly as the
OpenRosa view receives a phone's post (`receive`, `mark_queued`, commit, `wake`), in
batches. Untimed so far. Then the drain, timed: N workers started as the Procfile's
`worker:` line, until every submission is normalized, needs_review or failed (the database
is polled). Reported: drain time, cases and submissions per second, each worker's RSS over
the progress, CPU seconds per process group, and checks that every record arrived.
See bench/CASES.md.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # `server`, `bench` when run as a script

from bench.submissions import (  # noqa: E402 - after the path fix above
    VENV_BIN,
    Processes,
    child_env,
    group_cpu_seconds,
    machine_info,
    procfile_lines,
    run_checked,
    start_postgresql,
    tail,
)

TARGET_S = 30.0  #: the issue's target for 13,359 cases on a 2-core machine
TARGET_CASES = 13_359
DONE_STATES = ("normalized", "needs_review", "failed")
PROGRESS_MARKS = (0.1, 0.5, 1.0)
#: Profiles are large: kept outside the repository.
PROFILES = Path(tempfile.gettempdir()) / "casebridge-bench-profiles"


class BenchTimeout(Exception):
    pass


def _raise_interrupt(signum, _frame):
    raise KeyboardInterrupt(f"signal {signum}")


def _raise_timeout(_signum, _frame):
    raise BenchTimeout("the benchmark ran past its time bound")


# ---- loading: the submissions as the app receives them -----------------------------------


def load(cases: int, seed: int, batch: int = 500, phones: int = 40) -> dict:
    """Receive the caseload in this process, as the OpenRosa view does; untimed by the bench.

    Per submission `receive` (parse, form version, duplicate check, one INSERT, already
    marked queued); a commit per `batch` (the view commits per post: the same rows, fewer
    fsyncs), then `wake` for each receipt after the commit, as the view does.
    """
    from sqlalchemy import select

    from bench.caseload import Caseload
    from server import create_app
    from server.appusers.operations import create_app_user, grant_form
    from server.extensions import db
    from server.forms.models import Form
    from server.projects.models import Project
    from server.submissions import operations as subs
    from server.submissions import queueing

    app = create_app()
    started = time.monotonic()
    with app.app_context():
        forms = list(db.session.scalars(select(Form)))
        refs = {f.xml_form_id: subs.FormRef(f.id, f.xml_form_id, f.state) for f in forms}
        project = db.session.get(Project, forms[0].project_id)
        app_user, _token = create_app_user(project, "Bench phones")
        for form in forms:
            grant_form(app_user, form)
        db.session.commit()
        submitters = [
            subs.Submitter(app_user_id=app_user.id, device_id=f"collect:bench{n:012d}")
            for n in range(phones)
        ]
        caseload = Caseload(cases, seed=seed)
        keys, received, queued, xml_bytes = [], 0, 0, 0
        for sub in caseload:
            receipt = subs.receive(
                sub.xml, [], find_form=refs.get, submitter=submitters[received % phones]
            )
            if not receipt.created or receipt.queue_key is None:
                raise SystemExit(f"{sub.instance_id} was not new: the generator repeated itself")
            keys.append(receipt.queue_key)
            received += 1
            xml_bytes += len(sub.xml)
            if len(keys) == batch:
                queued += _commit_and_wake(db, queueing, keys)
        queued += _commit_and_wake(db, queueing, keys)
    return {
        "received": received,
        "queued": queued,
        "xml_bytes_mean": round(xml_bytes / max(received, 1)),
        "load_s": round(time.monotonic() - started, 1),
        "generated": dict(caseload.stats),
    }


def _commit_and_wake(db, queueing, keys: list) -> int:
    """After the commit, as the view: wake the queue for each; if Redis is down, 'received'."""
    db.session.commit()
    pushed = 0
    for key in keys:
        if queueing.wake():
            pushed += 1
        else:
            queueing.mark_received(key)
    db.session.commit()
    keys.clear()
    return pushed


# ---- measuring the drain ------------------------------------------------------------------


def memory_of_group(pgid: int) -> dict[int, dict]:
    """pid -> {rss_kb, hwm_kb, name} for every live process of a process group."""
    found = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
            if int(stat[stat.rindex(")") + 2 :].split()[2]) != pgid:
                continue
            status = Path(f"/proc/{entry}/status").read_text()
        except (OSError, ValueError):
            continue
        fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
        found[int(entry)] = {
            "name": fields.get("Name", "").strip(),
            "rss_kb": int(fields.get("VmRSS", "0 kB").split()[0]),
            "hwm_kb": int(fields.get("VmHWM", "0 kB").split()[0]),
        }
    return found


def mb(kb: int | None) -> float | None:
    return None if kb is None else round(kb / 1024, 1)


class Drain:
    """Poll the database for progress, sample each worker's memory; stop when all is done.

    `workers` are the Procfile processes (process groups); the RQ worker processes inside
    them (one, or a pool's forks) are found in RQ's registry, and each one's RSS is sampled.
    """

    def __init__(
        self, database_url: str, redis_url: str, total: int, workers: dict[str, int], poll: float
    ):
        from redis import Redis
        from sqlalchemy import create_engine

        self.engine = create_engine(database_url)
        self.redis = Redis.from_url(redis_url, socket_timeout=2)
        self.total, self.workers, self.poll = total, workers, poll
        self.samples: list[dict] = []
        self.first_done: tuple[int, dict] | None = None  #: (done, CPU s per group) then
        self.services: dict[str, int] = {}  #: other process groups whose memory is sampled
        self.rq_pids: dict[str, list[int]] = {}  #: Procfile process -> its RQ worker pids

    def remaining(self) -> int:
        from sqlalchemy import text

        with self.engine.connect() as connection:
            return int(
                connection.execute(
                    text("SELECT count(*) FROM submissions WHERE state IN ('received', 'queued')")
                ).scalar()
            )

    def _find_rq_workers(self, memory: dict[str, dict]) -> None:
        from rq import Worker

        try:
            registered = {w.pid for w in Worker.all(connection=self.redis) if w.pid}
        except Exception:  # noqa: BLE001 - try again at the next poll
            return
        for group, processes in memory.items():
            pids = sorted(pid for pid in processes if pid in registered)
            if pids:
                self.rq_pids[group] = pids

    def _sample(self, sample: dict) -> None:
        memory = {group: memory_of_group(pgid) for group, pgid in self.workers.items()}
        known = {pid for pids in self.rq_pids.values() for pid in pids}
        alive = {pid for processes in memory.values() for pid in processes}
        if len(self.rq_pids) < len(self.workers) or not known <= alive:
            self._find_rq_workers(memory)
        sample["rss_kb"], sample["hwm_kb"], sample["group_rss_kb"] = {}, {}, {}
        for group, processes in memory.items():
            sample["group_rss_kb"][group] = sum(m["rss_kb"] for m in processes.values())
            for index, pid in enumerate(self.rq_pids.get(group, []), start=1):
                if pid in processes:
                    name = f"{group}/rq{index}"
                    sample["rss_kb"][name] = processes[pid]["rss_kb"]
                    sample["hwm_kb"][name] = processes[pid]["hwm_kb"]
        for name, pgid in self.services.items():
            rss = sum(m["rss_kb"] for m in memory_of_group(pgid).values())
            sample["rss_kb"][name] = sample["group_rss_kb"][name] = rss

    def run(self, started: float, timeout: float, cpu_now) -> dict:
        """Until nothing is left; `cpu_now()` is read when the first submission is done."""
        first_done_s = None
        while True:
            remaining = self.remaining()
            elapsed = time.monotonic() - started
            done = self.total - remaining
            sample = {"t": round(elapsed, 2), "done": done}
            self._sample(sample)
            self.samples.append(sample)
            if done and first_done_s is None:
                first_done_s = round(elapsed, 2)
                self.first_done = (done, cpu_now())
            if remaining == 0:
                return {"drain_s": round(elapsed, 2), "first_done_s": first_done_s}
            dead = [n for n, pgid in self.workers.items() if pgid not in memory_of_group(pgid)]
            if dead:
                raise SystemExit(f"worker(s) {dead} exited with {remaining} left")
            if elapsed > timeout:
                return {"drain_s": None, "first_done_s": first_done_s, "timed_out": True}
            time.sleep(self.poll)

    def memory_at_progress(self) -> dict:
        """Each RQ worker's RSS when 10%, 50% and 100% were done, and its peak (VmHWM)."""
        names = list(dict.fromkeys(n for s in self.samples for n in s["rss_kb"]))
        report = {}
        for name in names:
            marks = {}
            for mark in PROGRESS_MARKS:
                hit = next(
                    (
                        s
                        for s in self.samples
                        if s["done"] >= mark * self.total and name in s["rss_kb"]
                    ),
                    None,
                )
                marks[f"{int(mark * 100)}%"] = mb(hit["rss_kb"][name]) if hit else None
            peaks = [s["hwm_kb"].get(name) or s["rss_kb"].get(name) or 0 for s in self.samples]
            marks["peak_hwm"] = mb(max(peaks, default=0))
            report[name] = marks
        return report

    def rate_by_decile(self) -> list[float | None]:
        """Submissions per second in each tenth of the drain: does the cost grow with size?"""
        times = []
        for tenth in range(1, 11):
            hit = next((s for s in self.samples if s["done"] >= tenth / 10 * self.total), None)
            times.append(hit["t"] if hit else None)
        first = next((s["t"] for s in self.samples if s["done"]), None)
        rates, previous = [], first
        for index, moment in enumerate(times):
            share = self.total / 10 if index else self.total / 10 - self.first_done[0]
            if moment is None or previous is None or moment <= previous or share <= 0:
                rates.append(None)
            else:
                rates.append(round(share / (moment - previous), 1))
            previous = moment
        return rates

    def counts(self) -> dict:
        from sqlalchemy import text

        with self.engine.connect() as connection:

            def count(table: str) -> int:
                sql = f"SELECT count(*) FROM {table}"  # noqa: S608 - our own table names
                return int(connection.execute(text(sql)).scalar())

            by_state = connection.execute(
                text(
                    "SELECT f.xml_form_id, s.state, count(*) FROM submissions s "
                    "JOIN forms f ON f.id = s.form_id GROUP BY f.xml_form_id, s.state"
                )
            ).all()
            tables = ("cases", "persons", "case_versions", "movement_events", "perpetrators",
                      "support_plans", "assistance", "consents", "episodes")  # fmt: skip
            return {
                "by_form_and_state": {f"{form}/{state}": n for form, state, n in by_state},
                **{table: count(table) for table in tables},
            }

    def close(self) -> None:
        self.engine.dispose()


def checks(counts: dict, generated: dict) -> dict:
    """What the caseload put in against what the worker made of it."""
    states: dict[str, int] = {}
    for key, n in counts["by_form_and_state"].items():
        state = key.split("/")[1]
        states[state] = states.get(state, 0) + n
    follow_ups = generated.get("cb_assistance", 0) + generated.get("cb_reintegration", 0)
    expected = {
        "cases == consented screenings": (counts["cases"], generated["cases"]),
        "needs_review == invalid values put in": (
            states.get("needs_review", 0),
            generated.get("needs_review_expected", 0),
        ),
        "failed == 0": (states.get("failed", 0), 0),
        "case_versions == cases + follow-ups": (
            counts["case_versions"],
            generated["cases"] + follow_ups,
        ),
        "movement_events": (counts["movement_events"], generated.get("trafficking_event", 0)),
        "perpetrators": (counts["perpetrators"], generated.get("perpetrator", 0)),
        "support_plans": (
            counts["support_plans"],
            generated.get("support_plan", 0) + generated.get("completed_plan", 0),
        ),
        "assistance": (counts["assistance"], generated.get("assistance", 0)),
    }
    return {
        name: {"got": got, "expected": want, "ok": got == want}
        for name, (got, want) in expected.items()
    }


def downsample(samples: list[dict], keep: int = 200) -> list[dict]:
    step = max(1, len(samples) // keep)
    return samples[::step] + ([samples[-1]] if samples and len(samples) % step != 1 else [])


def code_state() -> dict:
    """The measured code: the commit, and what of server/ etc. differs from it (a digest)."""
    import hashlib

    def git(*argv: str) -> str:
        done = subprocess.run(["git", *argv], cwd=ROOT, capture_output=True, text=True, check=False)
        return done.stdout

    commit = git("rev-parse", "--short", "HEAD").strip()
    if not commit and (ROOT / "COMMIT").exists():  # a `git archive` snapshot (bench/CASES.md)
        return {"commit": (ROOT / "COMMIT").read_text().strip(), "snapshot": str(ROOT)}
    paths = ["--", "server", "config", "migrations", "Procfile"]
    diff = git("diff", "HEAD", *paths) + git("ls-files", "--others", "--exclude-standard", *paths)
    return {
        "commit": commit,
        "uncommitted": git("status", "--porcelain", *paths).splitlines(),
        "uncommitted_digest": hashlib.sha256(diff.encode()).hexdigest()[:12],
    }


def redis_memory(redis_url: str) -> dict:
    from redis import Redis

    try:
        info = Redis.from_url(redis_url, socket_timeout=2).info("memory")
    except Exception as error:  # noqa: BLE001 - informative only
        return {"error": repr(error)}
    return {"used_memory_mb": mb(info["used_memory"] // 1024)}


# ---- main ---------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", type=int, default=TARGET_CASES)
    parser.add_argument(
        "--workers", type=int, default=1, help="copies of the Procfile's worker: line to run"
    )
    parser.add_argument(
        "--processes",
        type=int,
        default=None,
        help="override the worker line's --processes (RQ worker processes per copy)",
    )
    parser.add_argument("--database", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--seed", type=int, default=2008)
    parser.add_argument("--timeout", type=float, default=3600, help="drain time bound, s")
    parser.add_argument("--poll", type=float, default=0.25, help="progress poll interval, s")
    parser.add_argument(
        "--profile",
        action="store_true",
        help="instead: one worker in burst mode under cProfile; print where a job's time goes",
    )
    parser.add_argument("--clock", choices=["cpu", "wall"], default="cpu", help="for --profile")
    parser.add_argument(
        "--py-spy",
        choices=["cpu", "wall"],
        help="sample worker-1 with py-spy (PY_SPY, default /tmp/pyspy/bin/py-spy): "
        "cpu = running code only, wall = with --idle (waiting too)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the temporary instance")
    parser.add_argument("--output", type=Path, default=None, help="JSON file to write")
    parser.add_argument("--load", action="store_true", help=argparse.SUPPRESS)  # the child
    args = parser.parse_args(argv)
    if (args.profile or args.py_spy) and args.processes not in (None, 1):
        parser.error("--profile and --py-spy look at one RQ worker process: --processes 1")
    if args.profile or args.py_spy:
        args.processes = 1  # a profiler sees one process; a pool's forks would be missed
    if args.load:
        print(json.dumps(load(args.cases, args.seed)))
        return 0

    signal.signal(signal.SIGINT, _raise_interrupt)
    signal.signal(signal.SIGTERM, _raise_interrupt)
    signal.signal(signal.SIGALRM, _raise_timeout)
    signal.alarm(int(600 + args.cases * 0.02 + args.timeout))

    started_at = datetime.now()
    instance = Path(tempfile.mkdtemp(prefix="casebridge-cases-"))
    procs = Processes()
    result: dict = {}
    try:
        result = run(args, instance, procs, started_at)
    except BenchTimeout as error:
        print(f"error: {error}; stopping everything", file=sys.stderr)
        return 3
    except KeyboardInterrupt:
        print("\ninterrupted; stopping everything", file=sys.stderr)
        return 130
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not skip cleanup
        procs.stop_all()
        if args.keep:
            print(f"kept {instance}", file=sys.stderr)
        else:
            shutil.rmtree(instance, ignore_errors=True)
        signal.signal(signal.SIGINT, signal.default_int_handler)
    if args.profile:
        return 0
    name = f"cases-{started_at:%Y-%m-%dT%H%M%S}-{args.database}-{args.cases}-w{args.workers}"
    if args.processes is not None:
        name += f"-p{args.processes}"
    output = args.output or BENCH / "results" / f"{name}.json"
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(result, indent=2) + "\n")
    print_report(result, output)
    return 0


def run(args, instance: Path, procs: Processes, started_at: datetime) -> dict:
    from server.redis_local import start_local_redis

    t0 = time.monotonic()
    redis_url, redis_process = start_local_redis(instance / "redis")
    procs.adopt("redis", redis_process)
    database_url, postmaster = (
        start_postgresql(instance, procs) if args.database == "postgresql" else (None, None)
    )
    env = child_env(instance, redis_url, database_url)
    effective_db = database_url or f"sqlite:///{instance / 'casebridge.sqlite3'}"
    print(f"[setup] instance {instance} ({args.database})", flush=True)
    run_checked([str(VENV_BIN / "casebridge"), "setup"], env, "setup", timeout=600)
    setup_s = round(time.monotonic() - t0, 1)
    print(f"[setup] done in {setup_s}s; generating and receiving the caseload", flush=True)
    out = run_checked(
        [sys.executable, str(Path(__file__)), "--load", "--cases", str(args.cases),
         "--seed", str(args.seed)],
        env, "load", timeout=600 + args.cases * 0.05,
    )  # fmt: skip
    loaded = json.loads(out.strip().splitlines()[-1])
    total = loaded["received"]
    print(
        f"[load] {total} submissions ({loaded['generated']['cases']} cases) received and "
        f"queued in {loaded['load_s']}s",
        flush=True,
    )
    logs = instance / "logs"
    logs.mkdir()
    worker_argv = worker_command(args.processes)
    if args.profile:
        return profile(args, worker_argv, env, instance, total)

    groups: dict[str, int] = {}
    if redis_process is not None:
        groups["redis"] = redis_process.pid
    if postmaster:
        groups["postgresql"] = -postmaster  # the postmaster and its backends
    code_before = code_state()
    drain = Drain(effective_db, redis_url, total, {}, args.poll)
    if redis_process is not None:
        drain.services["redis"] = redis_process.pid  # RQ keeps finished jobs for a while
    load_before = [round(x, 2) for x in os.getloadavg()]
    try:
        cpu_before, own_before = group_cpu_seconds(groups), os.times()
        started = time.monotonic()
        for index in range(1, args.workers + 1):
            name = f"worker-{index}"
            worker = procs.start(name, worker_argv, env, logs / f"{name}.log")
            groups[name] = worker.pid
            drain.workers[name] = worker.pid
        print(f"[drain] {args.workers} x {shlex.join(worker_argv)}", flush=True)
        spy = (
            start_py_spy(args, procs, drain.workers["worker-1"], instance) if args.py_spy else None
        )
        timing = drain.run(started, args.timeout, lambda: group_cpu_seconds(groups))
        if spy is not None:
            spy_raw = stop_py_spy(args, *spy)
        cpu_after, own_after = group_cpu_seconds(groups), os.times()
        memory = drain.memory_at_progress()
        deciles = drain.rate_by_decile()
        counts = drain.counts()
    finally:
        drain.close()
    redis_mem = redis_memory(redis_url)
    for name in drain.workers:
        log = logs / f"{name}.log"
        if "Traceback" in log.read_text(errors="replace"):
            print(f"warning: {name} logged a traceback:\n{tail(log)}", file=sys.stderr)
    cpu = {k: round(cpu_after.get(k, 0) - cpu_before.get(k, 0), 2) for k in groups}
    cpu["bench (poller)"] = round(
        own_after.user + own_after.system - own_before.user - own_before.system, 2
    )
    generated = loaded["generated"]
    drain_s = timing["drain_s"]
    spy_report = None
    worker_cpu = sum(v for k, v in cpu.items() if k.startswith("worker-"))
    steady = None
    if drain.first_done is not None and drain.first_done[0] < total:
        done_then, cpu_then = drain.first_done
        spent = sum(cpu_after[k] - cpu_then[k] for k in drain.workers)
        steady = round(spent / (total - done_then) * 1000, 2)
    if args.py_spy and drain_s and steady:
        from bench.profile_cases import pyspy_report

        wall = args.py_spy == "wall"
        scale = drain_s / total * 1000 if wall else steady
        spy_report = pyspy_report(spy_raw, scale, "wall ms" if wall else "worker CPU ms")
        print(spy_report)
    return {
        "benchmark": "cases",
        "started_at": started_at.isoformat(timespec="seconds"),
        "database": args.database,
        "cases": generated["cases"],
        "submissions": total,
        "workers": args.workers,
        "worker_command": worker_argv,
        "procfile_worker": procfile_lines()["worker"],
        "rq_worker_processes": sum(len(pids) for pids in drain.rq_pids.values()),
        "seed": args.seed,
        "machine": machine_info(),
        "code": code_before,
        "code_changed_during_run": code_state() != code_before,
        "load_average_before": load_before,
        "load_average_after": [round(x, 2) for x in os.getloadavg()],
        "setup_s": setup_s,
        "load": loaded,
        **timing,
        "cases_per_s": round(generated["cases"] / drain_s, 1) if drain_s else None,
        "submissions_per_s": round(total / drain_s, 1) if drain_s else None,
        "rate_by_decile": deciles,
        "worker_cpu_ms_per_submission": round(worker_cpu / total * 1000, 2),
        "worker_cpu_ms_per_submission_after_startup": steady,
        "cpu_s": cpu,
        "cpu_busy_share": (
            round(sum(cpu.values()) / (os.cpu_count() * drain_s), 3) if drain_s else None
        ),
        "rss_mb": memory,
        "redis": redis_mem,
        "counts": counts,
        "checks": checks(counts, generated),
        "target": {
            "drain_s_max": TARGET_S * generated["cases"] / TARGET_CASES,
            "met": bool(drain_s) and drain_s <= TARGET_S * generated["cases"] / TARGET_CASES,
        },
        "samples": downsample(drain.samples),
        "py_spy": spy_report,
    }


PY_SPY_RATE = 100


def worker_command(processes: int | None) -> list[str]:
    """The Procfile's `worker:` line; `processes` overrides its `--processes` (RQ's pool)."""
    argv = shlex.split(procfile_lines()["worker"])
    if processes is None:
        return argv
    argv = [a for a in argv if not a.startswith("--processes=")]
    if "--processes" in argv:
        position = argv.index("--processes")
        del argv[position : position + 2]
    return [*argv, "--processes", str(processes)] if processes != 1 else argv


def start_py_spy(args, procs: Processes, pid: int, instance: Path):
    py_spy = os.environ.get("PY_SPY", "/tmp/pyspy/bin/py-spy")  # noqa: S108 - its documented home
    output = instance / "worker.pyspy.raw"
    argv = [py_spy, "record", "--pid", str(pid), "--rate", str(PY_SPY_RATE), "--format", "raw",
            "--output", str(output)]  # fmt: skip
    if args.py_spy == "wall":
        argv.append("--idle")
    process = procs.start("py-spy", argv, dict(os.environ), instance / "logs" / "py-spy.log")
    return process, output


def stop_py_spy(args, process: subprocess.Popen, output: Path) -> Path:
    process.send_signal(signal.SIGINT)  # py-spy writes its file on Ctrl-C
    process.wait(30)
    kept = PROFILES / f"cases-pyspy-{args.database}-{args.cases}-{args.py_spy}.raw"
    kept.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(output, kept)
    print(f"py-spy stacks: {kept}")
    return kept


def profile(args, worker_argv: list[str], env: dict, instance: Path, total: int) -> dict:
    """The Procfile's worker in burst mode under cProfile: where a job's time goes."""
    from bench.profile_cases import report

    if Path(worker_argv[0]).name != "casebridge":
        raise SystemExit(
            f"--profile expects the Procfile worker to be `casebridge ...`: {worker_argv}"
        )
    output = instance / "worker.prof"
    argv = [sys.executable, str(BENCH / "profile_cases.py"), str(output), "--clock", args.clock,
            "--run-worker", *worker_argv[1:]]  # fmt: skip
    started, cpu_before = time.monotonic(), os.times()
    done = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=args.timeout, stdin=subprocess.DEVNULL)  # fmt: skip
    wall, cpu_after = time.monotonic() - started, os.times()
    if done.returncode != 0:
        raise SystemExit(f"profiled worker failed:\n{done.stderr[-3000:]}")
    cpu = cpu_after.children_user + cpu_after.children_system
    cpu -= cpu_before.children_user + cpu_before.children_system
    name = f"cases-profile-{args.database}-{args.cases}-{args.clock}.prof"
    kept = PROFILES / name
    kept.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(output, kept)
    print(report(output, total, wall))
    sql = json.loads(Path(f"{output}.sql.json").read_text())
    per_job = {kind: round(n / total, 2) for kind, n in sorted(sql.items())}
    print(f"SQL statements per submission (worker start-up included): {per_job}")
    print(f"worker CPU {cpu:.1f} s ({cpu / total * 1000:.1f} ms per submission, with cProfile)")
    print(f"load average {[round(x, 2) for x in os.getloadavg()]}; profile: {kept}")
    return {}


def print_report(result: dict, output: Path) -> None:
    print()
    print(
        f"Cases, {result['database']}, {result['workers']} x "
        f"`{shlex.join(result['worker_command'])}` ({result['rq_worker_processes']} RQ worker "
        f"processes): {result['cases']} cases in "
        f"{result['submissions']} submissions (XML {result['load']['xml_bytes_mean']} B mean)"
    )
    if result["drain_s"] is None:
        print("drain timed out")
    else:
        print(
            f"drain {result['drain_s']} s (first done after {result['first_done_s']} s): "
            f"{result['cases_per_s']} cases/s, {result['submissions_per_s']} submissions/s, "
            f"{result['worker_cpu_ms_per_submission']} ms worker CPU per submission "
            f"({result['worker_cpu_ms_per_submission_after_startup']} after start-up); "
            f"target <= {result['target']['drain_s_max']:.0f} s: "
            f"{'met' if result['target']['met'] else 'MISSED'}"
        )
    print(f"submissions/s by tenth of the drain: {result['rate_by_decile']}")
    for name, marks in result["rss_mb"].items():
        print(f"{name} RSS MB at 10/50/100%: {marks['10%']} / {marks['50%']} / {marks['100%']}"
              f" (peak {marks['peak_hwm']})")  # fmt: skip
    print(f"CPU s per group: {result['cpu_s']} (busy {result['cpu_busy_share']})")
    print(f"code: {result['code']}")
    if result["code_changed_during_run"]:
        print("WARNING: the server code changed during the run; compare with care")
    print(f"redis: {result['redis']}")
    print(f"counts: {result['counts']}")
    bad = {k: v for k, v in result["checks"].items() if not v["ok"]}
    print("checks: all ok" if not bad else f"checks FAILED: {bad}")
    print(f"results: {output}")


if __name__ == "__main__":
    sys.exit(main())
