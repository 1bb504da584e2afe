"""Where a normalization job's time goes, from a cProfile of one `casebridge worker --burst`.

    .venv/bin/python bench/cases.py --cases 2000 --profile [--clock cpu|wall]
    .venv/bin/python bench/profile_cases.py FILE.prof SUBMISSIONS  # read one again

`--clock cpu` counts CPU time only (what the code costs, whatever else runs on the
machine); `wall` also counts waiting: fsync, Redis and database round trips, and the
scheduler when the machine is busy.

Components are cumulative times of named functions, per job; they nest (the job holds
normalize, normalize holds the parse) as the indentation shows.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import pstats
import sys
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CLOCKS = {"cpu": time.process_time, "wall": time.perf_counter}

#: (label, file suffix, function name); the first match of each is used.
COMPONENTS = [
    ("worker loop (RQ, all jobs)", "rq/worker/base.py", "work"),
    ("  RQ dequeue (blocking pop, job load)", "rq/worker/base.py", "dequeue_job_and_maintain_ttl"),
    ("  RQ perform_job (whole job)", "server/worker.py", "perform_job"),
    ("    job function process_submission", "server/submissions/jobs.py", "process_submission"),
    ("      find_submission (SELECT + xml)", "server/submissions/operations.py", "find_submission"),
    ("      normalize", "server/cases/operations.py", "normalize"),
    ("        parse_xml_safely (hardened lxml)", "server/forms/xform.py", "parse_xml_safely"),
    ("        read_submission (values, checks)", "server/cases/reading.py", "read_submission"),
    ("          convert (code lookups)", "server/cases/reading.py", "convert"),
    ("        _find_case (SELECT)", "server/cases/operations.py", "_find_case"),
    ("        _new_case (INSERT case+person)", "server/cases/operations.py", "_new_case"),
    ("        _apply (fields, consent, children)", "server/cases/operations.py", "_apply"),
    ("          _apply_child (SELECT + flush each)", "server/cases/operations.py", "_apply_child"),
    ("          _record_consent", "server/cases/operations.py", "_record_consent"),
    ("          _changed_since (versions load)", "server/cases/operations.py", "_changed_since"),
    ("      Session.commit (flush + COMMIT)", "sqlalchemy/orm/session.py", "commit"),
    ("      log.info (job line)", "logging/__init__.py", "info"),
    ("    RQ bookkeeping after the job", "rq/worker/base.py", "handle_job_success"),
    ("    RQ prepare (status, heartbeat)", "rq/worker/base.py", "prepare_job_execution"),
]
#: Totals across the whole run, wherever they are called from.
TOTALS = [
    ("all ORM flushes", "sqlalchemy/orm/session.py", "flush"),
    ("all lazy loads", "sqlalchemy/orm/strategies.py", "_load_for_state"),
    ("DB driver: sqlite3 execute", "~", "<method 'execute' of 'sqlite3.Cursor' objects>"),
    ("DB driver: sqlite3 commit", "~", "<method 'commit' of 'sqlite3.Connection' objects>"),
    ("DB driver: psycopg execute", "psycopg/cursor.py", "execute"),
    ("DB driver: psycopg commit", "psycopg/connection.py", "commit"),
    ("redis round trips", "redis/connection.py", "read_response"),
    ("logging handlers (emit)", "logging/__init__.py", "emit"),
    ("SQL compilation", "sqlalchemy/sql/compiler.py", "__init__"),
]


#: py-spy sees Python frames only: the driver and Redis waits show as these callers.
PYSPY_COMPONENTS = [
    ("    job function process_submission", "server/submissions/jobs.py", "process_submission"),
    ("      normalize", "server/cases/operations.py", "normalize"),
    ("    RQ bookkeeping after the job", "rq/worker/base.py", "handle_job_success"),
    ("    RQ prepare (status, heartbeat)", "rq/worker/base.py", "prepare_job_execution"),
    ("-- totals, wherever called --", "", ""),
    ("parse_xml_safely (hardened lxml)", "server/forms/xform.py", "parse_xml_safely"),
    ("read_submission (values, checks)", "server/cases/reading.py", "read_submission"),
    ("convert (code lookups)", "server/cases/reading.py", "convert"),
    ("all ORM flushes", "sqlalchemy/orm/session.py", "flush"),
    ("all lazy loads", "sqlalchemy/orm/strategies.py", "_load_for_state"),
    ("DB execute (driver, incl. waiting)", "sqlalchemy/engine/default.py", "do_execute"),
    ("DB commit (driver: COMMIT, fsync)", "sqlalchemy/engine/default.py", "do_commit"),
    ("redis replies (incl. waiting)", "redis/connection.py", "read_response"),
    ("logging handlers (emit)", "logging/__init__.py", "emit"),
]
PYSPY_TOTALS = [
    ("all ORM flushes", "sqlalchemy/orm/session.py", "flush"),
    ("all lazy loads", "sqlalchemy/orm/strategies.py", "_load_for_state"),
    ("DB execute (driver, incl. waiting)", "sqlalchemy/engine/default.py", "do_execute"),
    ("DB commit (driver: COMMIT, fsync)", "sqlalchemy/engine/default.py", "do_commit"),
    ("redis replies (incl. waiting)", "redis/connection.py", "read_response"),
    ("logging handlers (emit)", "logging/__init__.py", "emit"),
]


def pyspy_report(path: Path, ms_per_job: float, measure: str) -> str:
    """Components from py-spy's raw stacks, as shares of the worker's job loop.

    Only the main thread's samples taken inside the job loop count (RQ's pub/sub thread
    and start-up do not; a stack py-spy could not unwind to its root is assumed to be in
    the loop). A share times `ms_per_job` (the measured wall or CPU ms per submission,
    `measure` says which) gives the ms per job. The job function and `normalize` are also
    split by what they call, line by line, so the table follows the code as it changes.
    """
    stacks: list[tuple[list[str], int]] = []
    for line in path.read_text().splitlines():
        frames, _, count = line.rpartition(" ")
        if not frames or frames.startswith("Thread._bootstrap"):
            continue
        chain = frames.split(";")
        in_loop = any(_is(f, "rq/worker/base.py", "work") for f in chain)
        if in_loop or not chain[0].startswith("<module>"):
            stacks.append((chain, int(count)))
    total = max(sum(count for _frames, count in stacks), 1)

    def row(label: str, hits: int) -> str:
        return f"{label:<60}{hits / total:>8.1%}{hits / total * ms_per_job:>9.2f}"

    lines = [
        f"py-spy: {total} samples of the job loop; ms/job = share x {ms_per_job:.2f} ms "
        f"({measure} per submission, measured)",
        f"{'component':<60}{'share':>8}{'ms/job':>9}",
    ]
    for label, suffix, name in COMPONENTS[:3] + PYSPY_COMPONENTS:
        if not name:
            lines.append(label)
            continue
        hits = sum(count for frames, count in stacks if any(_is(f, suffix, name) for f in frames))
        lines.append(row(label, hits))
        if name in ("process_submission", "normalize"):
            for callee, hits in _callees(stacks, suffix, name)[:8]:
                lines.append(row(f"{'':<8}{callee}", hits))
    return "\n".join(lines)


def _callees(stacks, suffix: str, name: str) -> list[tuple[str, int]]:
    """What a function's time is spent in: (line: callee, samples), most first."""
    found: Counter = Counter()
    for frames, count in stacks:
        for index, frame in enumerate(frames):
            if _is(frame, suffix, name):
                line = frame.rpartition(":")[2].rstrip(")")
                callee = (
                    frames[index + 1].partition(" (")[0] if index + 1 < len(frames) else "(itself)"
                )
                found[f"line {line}: {callee}"[:50]] += count
                break
    return found.most_common()


def _is(frame: str, suffix: str, name: str) -> bool:
    """py-spy frames read `Class.method (package/module.py:line)`."""
    function, _, where = frame.partition(" (")
    return (function == name or function.endswith("." + name)) and suffix in where


def _find(stats: pstats.Stats, suffix: str, name: str):
    for (filename, _line, function), row in stats.stats.items():
        if function == name and (suffix == "~" and filename == "~" or filename.endswith(suffix)):
            return row
    return None


def report(path: Path, submissions: int, wall_s: float | None = None) -> str:
    stats = pstats.Stats(str(path))
    lines = [
        f"profile of one worker, {submissions} submissions"
        + (
            f", wall {wall_s:.1f} s ({submissions / wall_s:.1f}/s under cProfile)" if wall_s else ""
        ),
        f"{'component':<52}{'calls':>9}{'ms/job':>9}",
    ]
    for label, suffix, name in COMPONENTS + [("-- totals --", "", "")] + TOTALS:
        if not name:
            lines.append(label)
            continue
        row = _find(stats, suffix, name)
        if row is None:
            continue
        _cc, calls, _tt, cumulative, _callers = row
        lines.append(f"{label:<52}{calls:>9}{cumulative / submissions * 1000:>9.2f}")
    lines.append("top 25 by own time:")
    top = sorted(stats.stats.items(), key=lambda item: item[1][2], reverse=True)[:25]
    for (filename, line, function), (_cc, calls, own, cumulative, _c) in top:
        short = "/".join(Path(filename).parts[-3:])
        lines.append(
            f"  {own / submissions * 1000:7.3f} ms/job own {cumulative / submissions * 1000:7.3f}"
            f" cum {calls:>8}  {short}:{line} {function}"
        )
    return "\n".join(lines)


def run_worker(output: Path, clock: str, worker_args: list[str]) -> None:
    """`casebridge worker ... --burst` in this process, under cProfile with `clock`.

    Also counts SQL statements by kind and commits, into `output` + ".sql.json".
    """
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    from sqlalchemy import event
    from sqlalchemy.engine import Engine

    from server.cli import main as casebridge

    statements: Counter = Counter()

    def count(_conn, _cursor, statement, _params, _context, _many):
        statements[statement.lstrip().split(None, 1)[0].upper()] += 1

    event.listen(Engine, "before_cursor_execute", count)
    event.listen(Engine, "commit", lambda _conn: statements.update(["(commit)"]))
    profiler = cProfile.Profile(CLOCKS[clock])
    profiler.enable()
    try:
        casebridge([*worker_args, "--burst"], standalone_mode=False)
    finally:
        profiler.disable()
        profiler.dump_stats(str(output))
        Path(f"{output}.sql.json").write_text(json.dumps(dict(statements)))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("profile", type=Path)
    parser.add_argument("submissions", type=int, nargs="?")
    parser.add_argument("--run-worker", nargs="+", metavar="ARG", help=argparse.SUPPRESS)
    parser.add_argument("--clock", choices=sorted(CLOCKS), default="cpu")
    args = parser.parse_args(argv)
    if args.run_worker:
        run_worker(args.profile, args.clock, args.run_worker)
        return 0
    print(report(args.profile, args.submissions))
    return 0


if __name__ == "__main__":
    sys.exit(main())
