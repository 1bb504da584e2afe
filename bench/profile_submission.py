"""Where does one submission's time go? cProfile of CaseBridge's submission view, in-process.

    .venv/bin/python bench/profile_submission.py [--count 300] [--database sqlite|postgresql]
                                                 [--sort tottime|cumtime] [--limit 40]

Same temporary setup as bench/submissions.py (local Redis, `casebridge setup`, the bench
form, an app user), then `--count` sequential POSTs of the same bodies through Flask's test
client (no gunicorn, no network, no worker) under cProfile. Prints wall and CPU time per
request, then the top functions. Nothing is written outside the temporary instance.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import os
import pstats
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import submissions as bench  # noqa: E402 - bench/ is not a package


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=300)
    parser.add_argument("--database", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--sort", default="tottime")
    parser.add_argument("--limit", type=int, default=40)
    parser.add_argument(
        "--worker",
        action="store_true",
        help="then profile the RQ worker (burst) on the jobs those submissions queued",
    )
    parser.add_argument("--callers", default="", help="also print the callers of this function")
    parser.add_argument(
        "--plain",
        type=int,
        default=0,
        metavar="ROUNDS",
        help="no cProfile: ROUNDS timed rounds of --count requests, alternating CaseBridge and "
        "the baseline app (bench/baseline_app.py) through the same test client; medians",
    )
    args = parser.parse_args()

    instance = Path(tempfile.mkdtemp(prefix="casebridge-profile-"))
    procs = bench.Processes()
    try:
        from server.redis_local import start_local_redis

        redis_url, redis_process = start_local_redis(instance / "redis")
        procs.adopt("redis", redis_process)
        database_url, _ = (
            bench.start_postgresql(instance, procs)
            if args.database == "postgresql"
            else (None, None)
        )
        env = bench.child_env(instance, redis_url, database_url)
        forms_dir = instance / "bench-forms"
        forms_dir.mkdir()
        from tests.factories import xlsx_from_md

        (forms_dir / f"{bench.FORM_ID}.xlsx").write_bytes(xlsx_from_md(bench.FORM_MD))
        bench.run_checked(
            [str(bench.VENV_BIN / "casebridge"), "setup", "--forms-dir", str(forms_dir)],
            env,
            "setup",
        )
        out = bench.run_checked(
            [sys.executable, "-c", bench.APP_USER_SNIPPET, bench.FORM_ID], env, "app user"
        )
        app_user = json.loads(out.strip().splitlines()[-1])
        path = f"/v1/key/{app_user['token']}/projects/{app_user['project_id']}/submission"

        for key in [k for k in os.environ if k.startswith("CASEBRIDGE_")] + ["DATABASE_URL"]:
            os.environ.pop(key, None)
        os.environ.update({k: v for k, v in env.items() if k != "PATH"})
        from server import create_app

        app = create_app()
        client = app.test_client()
        bodies = bench.Bodies(f"profile-{os.getpid()}")
        headers = dict(bench.POST_HEADERS)
        content_type = headers.pop("Content-Type")

        def post(key: str) -> int:
            response = client.post(
                path,
                data=bodies.multipart(key),
                content_type=content_type,
                headers=headers,
            )
            return response.status_code

        for i in range(20):  # warm caches, connections, lazy imports
            assert post(f"warm/{i}") == 201
        if args.plain:
            compare_with_baseline(args, post, bodies, content_type, headers)
            return 0
        profiler = cProfile.Profile()
        wall, cpu = time.perf_counter(), time.process_time()
        profiler.enable()
        statuses = [post(f"run/{i}") for i in range(args.count)]
        profiler.disable()
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        bad = [s for s in statuses if s != 201]
        print(
            f"{args.count} submissions ({args.database}), under cProfile: "
            f"{wall / args.count * 1000:.2f} ms wall, {cpu / args.count * 1000:.2f} ms CPU "
            f"per request; non-201: {len(bad)}"
        )
        stats = pstats.Stats(profiler)
        stats.sort_stats(args.sort).print_stats(args.limit)
        if args.callers:
            stats.print_callers(args.callers)
        if args.worker:
            profile_worker(app, args)
        with app.app_context():
            from server.extensions import db

            db.session.remove()
            db.engine.dispose()
    finally:
        procs.stop_all()
        shutil.rmtree(instance, ignore_errors=True)
    return 0


def compare_with_baseline(args, post, bodies, content_type, headers) -> None:
    """CPU per request of CaseBridge and of the baseline app, in this process, alternated.

    The same test client overhead on both sides; no sockets, no gunicorn. What the ratio of
    these CPU figures says is roughly what bench/submissions.py's throughput ratio will be
    on a machine whose cores are the limit.
    """
    import statistics

    from baseline_app import create_app as create_baseline

    baseline = create_baseline().test_client()

    def post_baseline(key: str) -> int:
        return baseline.post(
            "/submission", data=bodies.multipart(key), content_type=content_type, headers=headers
        ).status_code

    for i in range(20):
        assert post_baseline(f"warm/{i}") == 201
    figures: dict[str, list[float]] = {"casebridge": [], "baseline": []}
    for round_ in range(args.plain):
        for name, send in (("baseline", post_baseline), ("casebridge", post)):
            wall, cpu = time.perf_counter(), time.process_time()
            bad = [s for i in range(args.count) if (s := send(f"{name}/{round_}/{i}")) != 201]
            cpu = time.process_time() - cpu
            wall = time.perf_counter() - wall
            assert not bad, f"{name}: {len(bad)} non-201"
            figures[name].append(cpu / args.count * 1000)
            print(
                f"round {round_ + 1} {name:10} {cpu / args.count * 1000:.3f} ms CPU, "
                f"{wall / args.count * 1000:.3f} ms wall per request"
            )
    for label, pick in (("median", statistics.median), ("least", min)):
        cb, base = (pick(figures[k]) for k in ("casebridge", "baseline"))
        print(
            f"{label} CPU per request: casebridge {cb:.3f} ms, baseline {base:.3f} ms, "
            f"baseline/casebridge {base / cb:.3f}"
        )


def profile_worker(app, args) -> None:
    """`casebridge worker --burst` in-process: CPU per job, then the top functions."""
    from server.extensions import QUEUE_NAMES, queue, redis_connection
    from server.worker import CaseBridgeWorker

    with app.app_context():
        jobs = queue("submissions").count
        worker = CaseBridgeWorker(
            [queue(name) for name in QUEUE_NAMES], connection=redis_connection()
        )
        profiler = cProfile.Profile()
        wall, cpu = time.perf_counter(), time.process_time()
        profiler.enable()
        worker.work(burst=True, logging_level="WARNING")
        profiler.disable()
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    print(
        f"worker: {jobs} jobs, under cProfile: {wall / max(jobs, 1) * 1000:.2f} ms wall, "
        f"{cpu / max(jobs, 1) * 1000:.2f} ms CPU per job"
    )
    pstats.Stats(profiler).sort_stats(args.sort).print_stats(args.limit)


if __name__ == "__main__":
    sys.exit(main())
