"""Submission benchmark: simulated phones posting to CaseBridge and to a bare Flask baseline.

    .venv/bin/python bench/submissions.py [--clients 50] [--seconds 20] [--rounds 3]
                                          [--database sqlite|postgresql]

One run, one temporary instance: a local redis-server, the database (SQLite file, or a
PostgreSQL from the pgserver wheel), `casebridge setup` with one bench form, an app user,
then CaseBridge under gunicorn exactly as the Procfile's `web:` line says plus the Procfile's
`worker:` process, and bench/baseline_app.py under the same gunicorn options on another
port. N threads ("phones") post ~5 KB XML + a ~20 KB photo.jpg for a fixed time; targets
alternate per round (baseline, casebridge, baseline, ...) with the same bodies. Then 200
sequential HEADs to each. Results: a table on stdout and bench/results/submissions-*.json.

Everything listens on 127.0.0.1 / unix sockets only; every process started here runs in
its own process group and is stopped on exit, Ctrl-C or timeout. See bench/README.md.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import math
import os
import platform
import random
import re
import shlex
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # `server`, `config`, `tests` when run as a script

VENV_BIN = Path(sys.executable).parent
HOST = "127.0.0.1"
FORM_ID = "bench_screening"
FORM_VERSION = "1"
BASELINE_APP = "bench.baseline_app:create_app()"
CASEBRIDGE_APP = "server:create_app()"
HEAD_COUNT = 200

FORM_MD = f"""
| survey   |                   |                 |                                   |
|          | type              | name            | label                             |
|          | start             | start           |                                   |
|          | end               | end             |                                   |
|          | deviceid          | deviceid        |                                   |
|          | text              | interviewer     | Interviewer                       |
|          | text              | district        | District or border post           |
|          | text              | respondent_name | Name of the person interviewed    |
|          | integer           | respondent_age  | Age                               |
|          | select_one gender | gender          | Gender                            |
|          | text              | narrative       | What happened, in their own words |
|          | image             | photo           | Photo of the identity document    |
| choices  |                   |                 |                                   |
|          | list_name         | name            | label                             |
|          | gender            | female          | Female                            |
|          | gender            | male            | Male                              |
|          | gender            | other           | Other                             |
| settings |                   |                 |                                   |
|          | form_id           | version         | form_title                        |
|          | {FORM_ID}         | {FORM_VERSION}  | Bench screening                   |
"""

# ---- bodies -----------------------------------------------------------------------------

_TEXT = (
    "she was promised work in a restaurant across the border and travelled by bus with two "
    "other women the recruiter kept their passports and said the debt for transport and "
    "lodging would be paid from wages they worked fourteen hours a day without a day off "
    "were not allowed to leave the house and were threatened that their families would be "
    "told after four months a neighbour called the hotline and the police came la frontière "
    "était fermée la nuit et le passeur demandait encore de l'argent à chaque étape"
)
_WORDS = _TEXT.split()
_NAMES = ["Amina Diallo", "Fatou Ndiaye", "Mariam Traoré", "Aïssata Bâ", "Hawa Koné", "Joy Okafor"]
_DISTRICTS = ["Rosso", "Kidira", "Gogui", "Diboli", "Moussala", "Karang"]
_INTERVIEWERS = ["A. Sy", "M. Fall", "K. Camara", "S. Diop"]
BOUNDARY = "----CaseBridgeBenchBoundary7MA4YWxkTrZu0gW"


def _narratives(count: int = 32, words: int = 760) -> list[str]:
    rng = random.Random(20240601)  # noqa: S311 - reproducible filler, not secrets
    return [" ".join(rng.choice(_WORDS) for _ in range(words)) for _ in range(count)]


_NARRATIVES = _narratives()
#: Stands for a photo's entropy-coded data: incompressible, like a real JPEG.
_PHOTO_PIXELS = random.Random(7).randbytes(20_000)  # noqa: S311


class Bodies:
    """Deterministic multipart bodies: the same key gives the same bytes to both targets."""

    def __init__(self, run_id: str):
        self.namespace = uuid.uuid5(uuid.NAMESPACE_URL, f"casebridge-bench/{run_id}")

    def xml(self, key: str) -> tuple[bytes, str]:
        instance = f"uuid:{uuid.uuid5(self.namespace, key)}"
        h = int(instance[5:13], 16)
        started = datetime(2024, 6, 1, 8, 0, tzinfo=UTC) + timedelta(seconds=h % 9_000_000)
        ended = started + timedelta(seconds=600 + h % 1800)
        narrative = _NARRATIVES[h % len(_NARRATIVES)]
        xml = (
            "<?xml version='1.0' ?>"
            '<data xmlns:jr="http://openrosa.org/javarosa" xmlns:orx="http://openrosa.org/xforms"'
            f' id="{FORM_ID}" version="{FORM_VERSION}">'
            f"<start>{started.isoformat(timespec='milliseconds')}</start>"
            f"<end>{ended.isoformat(timespec='milliseconds')}</end>"
            f"<deviceid>collect:{h:016x}</deviceid>"
            f"<interviewer>{_INTERVIEWERS[h % 4]}</interviewer>"
            f"<district>{_DISTRICTS[h % 6]}</district>"
            f"<respondent_name>{_NAMES[h % 6]}</respondent_name>"
            f"<respondent_age>{16 + h % 40}</respondent_age>"
            f"<gender>{('female', 'male', 'other')[h % 3]}</gender>"
            f"<narrative>{narrative}</narrative>"
            "<photo>photo.jpg</photo>"
            f"<meta><instanceID>{instance}</instanceID></meta></data>"
        )
        return xml.encode("utf-8"), instance

    def multipart(self, key: str) -> bytes:
        xml, instance = self.xml(key)
        comment = instance.encode()
        # SOI, a COM segment naming the instance (so each photo is new content), data, EOI.
        photo = (
            b"\xff\xd8\xff\xfe"
            + (len(comment) + 2).to_bytes(2, "big")
            + comment
            + _PHOTO_PIXELS
            + b"\xff\xd9"
        )
        b = BOUNDARY.encode()
        return b"".join(
            [
                b"--" + b + b"\r\n",
                b'Content-Disposition: form-data; name="xml_submission_file"; '
                b'filename="bench_screening_2024-06-01_08-00-00.xml"\r\n',
                b"Content-Type: text/xml\r\n\r\n",
                xml,
                b"\r\n--" + b + b"\r\n",
                b'Content-Disposition: form-data; name="photo.jpg"; filename="photo.jpg"\r\n',
                b"Content-Type: image/jpeg\r\n\r\n",
                photo,
                b"\r\n--" + b + b"--\r\n",
            ]
        )


POST_HEADERS = {
    "Content-Type": f"multipart/form-data; boundary={BOUNDARY}",
    "X-OpenRosa-Version": "1.0",
    "User-Agent": "org.odk.collect.android/v2024.2.4 okhttp/4.12.0 (casebridge-bench)",
}


# ---- processes ----------------------------------------------------------------------------


class Processes:
    """Children, each in its own session (process group); stopped in reverse order."""

    def __init__(self):
        self.children: list[tuple[str, subprocess.Popen]] = []
        self.cleanups: list[tuple[str, object]] = []

    def start(self, name: str, argv: list[str], env: dict, log: Path) -> subprocess.Popen:
        handle = log.open("ab")
        process = subprocess.Popen(
            argv,
            cwd=ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=handle,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        handle.close()
        self.children.append((name, process))
        return process

    def group(self, name: str) -> int | None:
        return next((p.pid for n, p in self.children if n == name), None)

    def adopt(self, name: str, process: subprocess.Popen | None) -> None:
        if process is not None:
            self.children.append((name, process))

    def on_stop(self, name: str, function) -> None:
        self.cleanups.append((name, function))

    def stop_all(self) -> None:
        """Newest first (worker and servers before Redis), one group at a time."""
        for name, process in reversed(self.children):
            _signal_group(process, signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(10)
            _signal_group(process, signal.SIGKILL)  # stragglers: gunicorn workers, RQ horses
            try:
                process.wait(5)
            except subprocess.TimeoutExpired:
                print(f"warning: could not stop {name} (pid {process.pid})", file=sys.stderr)
        self.children.clear()
        for name, function in reversed(self.cleanups):
            try:
                function()
            except Exception as error:  # noqa: BLE001 - report and keep cleaning
                print(f"warning: cleanup of {name} failed: {error}", file=sys.stderr)
        self.cleanups.clear()


def _signal_group(process: subprocess.Popen, sig: int) -> None:
    _signal_group_pid(process.pid, sig)  # start_new_session: the group id is the child's pid


def _signal_group_pid(pgid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def group_cpu_seconds(groups: dict[str, int]) -> dict[str, float]:
    """CPU seconds (user+system, with reaped children) of every process in each group.

    A group is a process group id; a negative value -P means "process P and its direct
    children" instead (PostgreSQL backends each lead their own process group).
    """
    totals = dict.fromkeys(groups, 0.0)
    by_pgid = {pgid: name for name, pgid in groups.items() if pgid > 0}
    by_parent = {-pid: name for name, pid in groups.items() if pid < 0}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            raw = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        fields = raw[raw.rindex(")") + 2 :].split()
        name = (
            by_pgid.get(int(fields[2]))
            or by_parent.get(int(entry))
            or by_parent.get(int(fields[1]))
        )
        if name is not None:
            totals[name] += sum(int(x) for x in fields[11:15]) / CLOCK_TICKS
    return totals


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def procfile_lines() -> dict[str, str]:
    lines = {}
    for raw in (ROOT / "Procfile").read_text().splitlines():
        if ":" in raw and not raw.lstrip().startswith("#"):
            name, command = raw.split(":", 1)
            lines[name.strip()] = command.strip()
    return lines


def web_argv(port: int, app_spec: str | None = None, workers: int | None = None) -> list[str]:
    """The Procfile's web: command with $PORT substituted; optionally another app module,
    or another number of gunicorn workers (an experiment: both targets get the same)."""
    command = procfile_lines()["web"]
    command = re.sub(r"\$\{PORT(?::-[^}]*)?\}|\$PORT\b", str(port), command)
    argv = shlex.split(command)
    if workers is not None:
        argv[argv.index("--workers") + 1] = str(workers)
    if app_spec is not None:
        if argv[-1] != CASEBRIDGE_APP:
            raise SystemExit(f"Procfile web: line does not end with {CASEBRIDGE_APP!r}: {argv}")
        argv[-1] = app_spec
    return argv


def tail(path: Path, size: int = 3000) -> str:
    return path.read_text(errors="replace")[-size:] if path.exists() else ""


# ---- HTTP -------------------------------------------------------------------------------


def request(port: int, method: str, path: str, body: bytes | None = None, headers=None):
    connection = http.client.HTTPConnection(HOST, port, timeout=30)
    try:
        connection.request(method, path, body=body, headers=headers or {})
        response = connection.getresponse()
        response.read()
        return response.status
    finally:
        connection.close()


def wait_ready(port: int, path: str, process: subprocess.Popen, log: Path, timeout=60.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"server exited ({process.returncode}); log:\n{tail(log)}")
        try:
            if request(port, "HEAD", path, headers={"X-OpenRosa-Version": "1.0"}) == 204:
                return
        except OSError:
            pass
        time.sleep(0.2)
    raise SystemExit(f"server on port {port} not ready after {timeout:.0f}s; log:\n{tail(log)}")


def percentile(sorted_values: list[float], p: float) -> float | None:
    if not sorted_values:
        return None
    rank = max(1, math.ceil(p / 100 * len(sorted_values)))
    return sorted_values[rank - 1]


def ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 2)


class Target:
    def __init__(self, name: str, port: int, path: str):
        self.name, self.port, self.path = name, port, path


def run_load(target: Target, bodies: Bodies, clients: int, seconds: float, key: str) -> dict:
    """`clients` phones post for `seconds`; each waits for its answer before the next post."""
    records: list[list[tuple[float, float, object]]] = [[] for _ in range(clients)]
    go = threading.Barrier(clients + 1)
    times = {}

    def phone(index: int) -> None:
        out = records[index]
        path = f"{target.path}?deviceID=collect%3Abench{index:04d}"
        seq = 0
        go.wait()
        deadline = times["deadline"]
        while time.perf_counter() < deadline:
            body = bodies.multipart(f"{key}/{index}/{seq}")
            seq += 1
            started = time.perf_counter()
            try:
                status: object = request(target.port, "POST", path, body, POST_HEADERS)
            except (OSError, http.client.HTTPException) as error:
                status = type(error).__name__
            finished = time.perf_counter()
            out.append((finished, finished - started, status))

    threads = [
        threading.Thread(target=phone, args=(i,), daemon=True, name=f"phone-{i}")
        for i in range(clients)
    ]
    for thread in threads:
        thread.start()
    times["start"] = time.perf_counter()
    times["deadline"] = times["start"] + seconds
    go.wait()
    for thread in threads:
        thread.join(timeout=seconds + 45)
    flat = [r for rs in records for r in rs]
    end = max((r[0] for r in flat), default=times["deadline"])
    elapsed = end - times["start"]
    latencies = sorted(r[1] for r in flat)
    statuses = Counter(r[2] for r in flat)
    ok = statuses.get(201, 0)
    errors = {str(k): v for k, v in statuses.items() if k != 201}
    return {
        "target": target.name,
        "key": key,
        "elapsed_s": round(elapsed, 3),
        "requests": len(flat),
        "ok": ok,
        "errors": sum(errors.values()),
        "error_statuses": errors,
        "throughput_rps": round(ok / elapsed, 2) if elapsed > 0 else 0.0,
        "p50_ms": ms(percentile(latencies, 50)),
        "p95_ms": ms(percentile(latencies, 95)),
        "p99_ms": ms(percentile(latencies, 99)),
        "max_ms": ms(latencies[-1] if latencies else None),
        "mean_ms": ms(statistics.fmean(latencies) if latencies else None),
    }


def head_latencies(target: Target, count: int = HEAD_COUNT) -> dict:
    values, statuses = [], Counter()
    for _ in range(count):
        started = time.perf_counter()
        try:
            statuses[request(target.port, "HEAD", target.path, None, POST_HEADERS)] += 1
        except (OSError, http.client.HTTPException) as error:
            statuses[type(error).__name__] += 1
        values.append(time.perf_counter() - started)
    values.sort()
    return {
        "count": count,
        "p50_ms": ms(percentile(values, 50)),
        "p95_ms": ms(percentile(values, 95)),
        "statuses": {str(k): v for k, v in statuses.items()},
    }


# ---- setup ------------------------------------------------------------------------------


def child_env(instance: Path, redis_url: str, database_url: str | None) -> dict:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("CASEBRIDGE_") and k not in ("DATABASE_URL", "REDIS_URL", "PORT")
    }
    env["PATH"] = str(VENV_BIN) + os.pathsep + env.get("PATH", "")
    # This checkout's code, also for console scripts (`casebridge worker`): a venv shared
    # between git worktrees has its editable install pointing at one of them only.
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p)
    env["CASEBRIDGE_INSTANCE_PATH"] = str(instance)
    env["REDIS_URL"] = redis_url
    env["PYTHONUNBUFFERED"] = "1"
    if database_url:
        env["CASEBRIDGE_DATABASE_URL"] = database_url
    return env


APP_USER_SNIPPET = """
import json
import sys
from sqlalchemy import select
from server import create_app
from server.appusers.operations import create_app_user, grant_form
from server.extensions import db
from server.forms.models import Form
from server.projects.models import Project

app = create_app()
with app.app_context():
    form = db.session.scalar(select(Form).where(Form.xml_form_id == sys.argv[1]))
    project = db.session.get(Project, form.project_id)
    app_user, token = create_app_user(project, "Bench phone")
    grant_form(app_user, form)
    db.session.commit()
    print(json.dumps({"token": token, "project_id": project.id}))
"""


def run_checked(argv: list[str], env: dict, what: str, timeout: float = 180) -> str:
    done = subprocess.run(
        argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout,
        stdin=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    if done.returncode != 0:
        raise SystemExit(f"{what} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    return done.stdout


def start_postgresql(instance: Path, procs: Processes) -> tuple[str, int | None]:
    """A PostgreSQL from the pgserver wheel, as tests/conftest.py does; (URL, postmaster pid)."""
    import pgserver

    server = pgserver.get_server(instance / "pgdata", cleanup_mode="stop")
    procs.on_stop("postgresql", server.cleanup)
    server.psql("CREATE DATABASE casebridge_bench;")
    socket_dir = server.get_uri().split("host=")[-1]
    return f"postgresql+psycopg://postgres@/casebridge_bench?host={socket_dir}", server.get_pid()


class Backlog:
    """Submissions waiting to be normalized (the database says; Redis holds one batch job
    per ~100 of them, so its queue length says little) and whether a job is running."""

    def __init__(self, database_url: str, redis_url: str):
        from redis import Redis
        from sqlalchemy import create_engine
        from sqlalchemy.pool import NullPool

        self.engine = create_engine(database_url, poolclass=NullPool)
        self.redis = Redis.from_url(redis_url, socket_timeout=2)

    def waiting(self) -> int | None:
        from sqlalchemy import text

        try:
            with self.engine.connect() as connection:
                return int(
                    connection.execute(
                        text(
                            "SELECT count(*) FROM submissions WHERE state IN ('queued', 'received')"
                        )
                    ).scalar()
                )
        except Exception:  # noqa: BLE001 - only informative
            return None

    def job_running(self) -> bool:
        try:
            return bool(
                self.redis.llen("rq:queue:submissions") or self.redis.zcard("rq:wip:submissions")
            )
        except Exception:  # noqa: BLE001 - only informative
            return False

    def wait_drained(self, timeout: float) -> tuple[float, int | None]:
        """Until nothing waits and no job runs (or `timeout`): seconds waited, still waiting."""
        started = time.monotonic()
        waiting = self.waiting()
        while (waiting or self.job_running()) and time.monotonic() - started < timeout:
            time.sleep(0.25)
            waiting = self.waiting()
        return round(time.monotonic() - started, 2), waiting


def row_counts(database_url: str) -> dict:
    from sqlalchemy import create_engine, text

    engine = create_engine(database_url)
    try:
        with engine.connect() as connection:

            def count(sql: str) -> int:
                return int(connection.execute(text(sql)).scalar())

            return {
                "casebridge_submissions": count("SELECT count(*) FROM submissions"),
                "casebridge_attachments_stored": count(
                    "SELECT count(*) FROM submission_attachments WHERE blob_key IS NOT NULL"
                ),
                "casebridge_by_state": dict(
                    connection.execute(
                        text("SELECT state, count(*) FROM submissions GROUP BY state")
                    ).all()
                ),
                "baseline_rows": count("SELECT count(*) FROM bench_raw"),
            }
    finally:
        engine.dispose()


def machine_info() -> dict:
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
        ).stdout.strip()
    except OSError:
        commit = ""
    import gunicorn

    return {
        "nproc": len(os.sched_getaffinity(0)),
        "cpu_count": os.cpu_count(),
        "cpu_model": model,
        "platform": platform.platform(),
        "python": platform.python_version(),
        "gunicorn": gunicorn.__version__,
        "git_commit": commit,
    }


# ---- main -------------------------------------------------------------------------------


class BenchTimeout(Exception):
    pass


def _raise_interrupt(signum, _frame):
    raise KeyboardInterrupt(f"signal {signum}")


def _raise_timeout(_signum, _frame):
    raise BenchTimeout("the benchmark ran past its time bound")


def median(values):
    values = [v for v in values if v is not None]
    return round(statistics.median(values), 2) if values else None


def summarise(rounds: list[dict], name: str) -> dict:
    mine = [r for r in rounds if r["target"] == name]
    return {
        "throughput_rps": median([r["throughput_rps"] for r in mine]),
        "p50_ms": median([r["p50_ms"] for r in mine]),
        "p95_ms": median([r["p95_ms"] for r in mine]),
        "p99_ms": median([r["p99_ms"] for r in mine]),
        "errors": sum(r["errors"] for r in mine),
        "requests": sum(r["requests"] for r in mine),
        "server_cpu_ms_per_ok": median([r.get("server_cpu_ms_per_ok") for r in mine]),
        "worker_cpu_ms_per_ok": median([r.get("worker_cpu_ms_per_ok") for r in mine]),
        "worker_cpu_ms_per_job": median([r.get("worker_cpu_ms_per_job") for r in mine]),
        "worker_jobs_per_s": median([r.get("worker_jobs_per_s") for r in mine]),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=20.0, help="length of one round")
    parser.add_argument("--rounds", type=int, default=3, help="rounds per target")
    parser.add_argument("--database", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--warmup", type=float, default=2.0, help="untimed seconds per target")
    parser.add_argument(
        "--drain-timeout",
        type=float,
        default=60.0,
        help="after a CaseBridge round, wait up to this long for the worker to empty the queue",
    )
    parser.add_argument(
        "--worker",
        choices=["procfile", "none"],
        default="procfile",
        help="none: no RQ worker (an experiment: what the worker's CPU costs the web tier)",
    )
    parser.add_argument(
        "--web-workers",
        type=int,
        default=None,
        help="an experiment: this many gunicorn workers for both targets instead of the Procfile's",
    )
    parser.add_argument("--keep", action="store_true", help="keep the temporary instance")
    parser.add_argument("--output", type=Path, default=None, help="JSON file to write")
    args = parser.parse_args(argv)

    per_round = args.seconds + 3
    bound = 120 + args.rounds * 2 * per_round + 2 * args.warmup + args.rounds * args.drain_timeout
    signal.signal(signal.SIGINT, _raise_interrupt)  # even where a shell started us ignoring it
    signal.signal(signal.SIGTERM, _raise_interrupt)
    signal.signal(signal.SIGALRM, _raise_timeout)
    signal.alarm(int(bound))

    started_at = datetime.now()
    run_id = started_at.strftime("%Y%m%dT%H%M%S") + f"-{os.getpid()}"
    instance = Path(tempfile.mkdtemp(prefix="casebridge-bench-"))
    procs = Processes()
    result: dict = {}
    try:
        t0 = time.monotonic()
        from server.redis_local import start_local_redis

        redis_url, redis_process = start_local_redis(instance / "redis")
        procs.adopt("redis", redis_process)
        database_url, postmaster = (
            start_postgresql(instance, procs) if args.database == "postgresql" else (None, None)
        )
        env = child_env(instance, redis_url, database_url)
        effective_db = database_url or f"sqlite:///{instance / 'casebridge.sqlite3'}"

        forms_dir = instance / "bench-forms"
        forms_dir.mkdir()
        from tests.factories import xlsx_from_md

        (forms_dir / f"{FORM_ID}.xlsx").write_bytes(xlsx_from_md(FORM_MD))
        print(f"[setup] instance {instance} ({args.database})", flush=True)
        run_checked(
            [str(VENV_BIN / "casebridge"), "setup", "--forms-dir", str(forms_dir)], env, "setup"
        )
        out = run_checked([sys.executable, "-c", APP_USER_SNIPPET, FORM_ID], env, "app user")
        app_user = json.loads(out.strip().splitlines()[-1])
        cb_path = f"/v1/key/{app_user['token']}/projects/{app_user['project_id']}/submission"

        cb_port, base_port = free_port(), free_port()
        while base_port == cb_port:
            base_port = free_port()
        cb_argv = web_argv(cb_port, workers=args.web_workers)
        base_argv = web_argv(base_port, BASELINE_APP, workers=args.web_workers)
        worker_argv = shlex.split(procfile_lines()["worker"])
        logs = instance / "logs"
        logs.mkdir()
        cb = procs.start("casebridge", cb_argv, dict(env, PORT=str(cb_port)), logs / "cb.log")
        base = procs.start("baseline", base_argv, dict(env, PORT=str(base_port)), logs / "bl.log")
        groups = {"casebridge": cb.pid, "baseline": base.pid}
        if args.worker == "procfile":
            worker = procs.start("worker", worker_argv, env, logs / "worker.log")
            groups["worker"] = worker.pid
        if redis_process is not None:
            groups["redis"] = redis_process.pid
        if postmaster:
            groups["postgresql"] = -postmaster  # the postmaster and its backends
        wait_ready(cb_port, cb_path, cb, logs / "cb.log")
        wait_ready(base_port, "/submission", base, logs / "bl.log")
        backlog = Backlog(effective_db, redis_url)
        setup_s = round(time.monotonic() - t0, 1)
        print(f"[setup] done in {setup_s}s: {shlex.join(cb_argv)}", flush=True)

        bodies = Bodies(run_id)
        targets = {
            "baseline": Target("baseline", base_port, "/submission"),
            "casebridge": Target("casebridge", cb_port, cb_path),
        }
        sample = bodies.multipart("sample")
        sample_xml, _ = bodies.xml("sample")

        def measured(name: str, seconds: float, key: str) -> dict:
            # CaseBridge's backlog is drained before every baseline round, so the worker is
            # idle then. (It used to be SIGSTOPped: stopped inside a transaction, it held
            # SQLite's write lock, and a whole baseline round timed out.)
            depth_before = backlog.waiting()
            cpu_before, own_before = group_cpu_seconds(groups), os.times()
            r = run_load(targets[name], bodies, args.clients, seconds, key)
            cpu_after, own_after = group_cpu_seconds(groups), os.times()
            r["queue_before"], r["queue_after"] = depth_before, backlog.waiting()
            cpu = {k: round(cpu_after[k] - cpu_before[k], 2) for k in groups}
            cpu["phones"] = round(
                own_after.user + own_after.system - own_before.user - own_before.system, 2
            )
            r["cpu_s"] = cpu
            r["cpu_busy_share"] = round(sum(cpu.values()) / (nproc * r["elapsed_s"]), 3)
            if r["ok"]:
                r["server_cpu_ms_per_ok"] = round(cpu[name] / r["ok"] * 1000, 2)
                if name == "casebridge" and "worker" in cpu:
                    r["worker_cpu_ms_per_ok"] = round(cpu["worker"] / r["ok"] * 1000, 2)
            if (
                name == "casebridge"
                and "worker" in groups
                and None not in (depth_before, r["queue_after"])
            ):
                done = r["ok"] - (r["queue_after"] - depth_before)
                r["worker_jobs_done"] = done
                r["worker_jobs_per_s"] = round(done / r["elapsed_s"], 1)
                if done > 0:
                    r["worker_cpu_ms_per_job"] = round(cpu["worker"] / done * 1000, 2)
            return r

        nproc = len(os.sched_getaffinity(0))
        warm = {}
        for name in targets:
            warm[name] = measured(name, args.warmup, "warmup")
        backlog.wait_drained(args.drain_timeout)

        rounds: list[dict] = []
        for index in range(args.rounds):
            for name in ("baseline", "casebridge"):
                r = measured(name, args.seconds, f"round{index}")
                r["round"] = index + 1
                if name == "casebridge":
                    r["drain_s"], r["queue_left"] = backlog.wait_drained(args.drain_timeout)
                rounds.append(r)
                print(
                    f"[round {index + 1}] {name:<10} {r['throughput_rps']:>8.1f} req/s  "
                    f"p50 {r['p50_ms']:>7.1f} ms  p95 {r['p95_ms']:>7.1f} ms  "
                    f"errors {r['errors']}  queue {r['queue_before']}->{r['queue_after']}  "
                    f"cpu {r['cpu_busy_share']:.0%} {r['cpu_s']}",
                    flush=True,
                )

        ratios = []
        for index in range(1, args.rounds + 1):
            pair = {r["target"]: r for r in rounds if r["round"] == index}
            if pair["baseline"]["throughput_rps"]:
                ratios.append(
                    pair["casebridge"]["throughput_rps"] / pair["baseline"]["throughput_rps"]
                )
        left = backlog.waiting()  # HEADs on a quiet server: the backlog was drained
        heads = {name: head_latencies(t) for name, t in targets.items()}
        summary = {name: summarise(rounds, name) for name in targets}
        ratio = round(statistics.median(ratios), 3) if ratios else None
        try:
            rows = row_counts(effective_db)
        except Exception as error:  # noqa: BLE001 - informative only
            rows = {"error": repr(error)}
        sent_ok = {
            name: sum(r["ok"] for r in rounds if r["target"] == name) + warm[name]["ok"]
            for name in targets
        }
        cb_sum = summary["casebridge"]
        result = {
            "benchmark": "submissions",
            "started_at": started_at.isoformat(timespec="seconds"),
            "database": args.database,
            "clients": args.clients,
            "seconds_per_round": args.seconds,
            "rounds_per_target": args.rounds,
            "warmup_s": args.warmup,
            "worker": args.worker,
            "setup_s": setup_s,
            "machine": machine_info(),
            "procfile_web": procfile_lines()["web"],
            "casebridge_command": cb_argv,
            "baseline_command": base_argv,
            "worker_command": worker_argv if args.worker == "procfile" else None,
            "body_bytes": len(sample),
            "xml_bytes": len(sample_xml),
            "summary": summary,
            "ratio": ratio,
            "ratios_per_round": [round(x, 3) for x in ratios],
            "head": heads,
            "targets": {
                "ratio_min": 0.6,
                "p95_max_ms": 200,
                "head_p50_max_ms": 5,
                "ratio_met": ratio is not None and ratio >= 0.6,
                "p95_met": cb_sum["p95_ms"] is not None and cb_sum["p95_ms"] < 200,
                "head_p50_met": heads["casebridge"]["p50_ms"] < 5,
            },
            "stored": {"accepted_201": sent_ok, "rows": rows},
            "queue_left_after_run": left,
            "rounds": rounds,
            "warmup": list(warm.values()),
        }
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

    output = args.output or (
        BENCH / "results" / f"submissions-{started_at:%Y-%m-%dT%H%M%S}-{args.database}.json"
    )
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(result, indent=2) + "\n")
    print_report(result, output)
    return 0


def print_report(result: dict, output: Path) -> None:
    m, s, t = result["machine"], result["summary"], result["targets"]
    print()
    print(
        f"Submissions, {result['database']}: {result['clients']} clients, "
        f"{result['rounds_per_target']} x {result['seconds_per_round']:g} s rounds per target, "
        f"body {result['body_bytes']} B (XML {result['xml_bytes']} B), nproc {m['nproc']}"
    )
    print(
        f"{'target':<11}{'req/s':>9}{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}{'HEAD p50':>10}"
        f"{'errors':>8}{'web CPU ms/req':>16}"
    )
    for name in ("baseline", "casebridge"):
        row = s[name]
        print(
            f"{name:<11}{row['throughput_rps']:>9.1f}{row['p50_ms']:>9.1f}{row['p95_ms']:>9.1f}"
            f"{row['p99_ms']:>9.1f}{result['head'][name]['p50_ms']:>10.2f}{row['errors']:>8}"
            f"{row['server_cpu_ms_per_ok'] or 0:>16.2f}"
        )
    cb = s["casebridge"]
    if cb["worker_jobs_per_s"] is not None:
        print(
            f"worker: {cb['worker_jobs_per_s']} jobs/s at {cb['worker_cpu_ms_per_job']} ms CPU "
            f"per job while CaseBridge accepted {cb['throughput_rps']} req/s; "
            f"queue left: {result['queue_left_after_run']}"
        )

    def verdict(ok: bool) -> str:
        return "met" if ok else "MISSED"

    print(
        f"ratio casebridge/baseline {result['ratio']} (per round {result['ratios_per_round']}) "
        f"target >= 0.6: {verdict(t['ratio_met'])}"
    )
    print(
        f"casebridge p95 {s['casebridge']['p95_ms']} ms, target < 200: {verdict(t['p95_met'])}; "
        f"HEAD p50 {result['head']['casebridge']['p50_ms']} ms, target < 5: "
        f"{verdict(t['head_p50_met'])}"
    )
    print(f"stored: {result['stored']}")
    print(f"results: {output}")


if __name__ == "__main__":
    sys.exit(main())
