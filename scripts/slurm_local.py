"""The local single-node SLURM test cluster (tests/slurm_cluster.py), from the shell.

    python scripts/slurm_local.py start [--if-possible] [--max-array-size 5]
    python scripts/slurm_local.py status [--json]
    python scripts/slurm_local.py stop [--force]
    python scripts/slurm_local.py run [--if-possible] -- CMD ...   # start, CMD, stop

``start`` installs slurm-wlm / munge / slurmdbd / mariadb-server with apt-get when missing
(root only), starts munged, mariadbd, slurmdbd, slurmctld and slurmd on loopback and waits
until jobs run; an already running cluster is reused. With ``--if-possible`` a machine that
cannot host it (not root, no apt-get) prints a loud reason and exits 0, so the SLURM tests
then skip; under ``CI=true`` that is an error (exit 1). ``stop`` stops the daemons in
reverse order by PID (refusing while another process holds a lease, unless ``--force``).
``run`` stops the cluster afterwards only if it started it, and exits with CMD's status.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.slurm_cluster import ClusterError, LocalSlurmCluster  # noqa: E402


def _cluster(args: argparse.Namespace) -> LocalSlurmCluster:
    kw = {"max_array_size": args.max_array_size} if getattr(args, "max_array_size", None) else {}
    return LocalSlurmCluster(**kw)


def _start(cluster: LocalSlurmCluster, if_possible: bool) -> bool | None:
    """Start; True if this call started daemons, False if reused, None if not possible."""
    why = cluster.unavailable_reason()
    if why is not None:
        banner = "!" * 78
        print(
            f"{banner}\nSLURM CLUSTER NOT PROVISIONED: {why}\n"
            f"the tests marked `slurm` will be SKIPPED\n{banner}",
            file=sys.stderr,
        )
        if os.environ.get("CI", "").lower() == "true":
            print("CI=true: the SLURM tests must run here", file=sys.stderr)
            raise SystemExit(1)
        if if_possible:
            return None
        raise SystemExit(1)
    t0 = time.monotonic()
    was_up = cluster.is_up()
    cluster.start()
    verb = "reused" if was_up and not cluster.started else "started"
    print(
        f"slurm cluster {verb} in {time.monotonic() - t0:.1f} s: "
        f"{json.dumps(cluster.describe()['pids'])}",
        file=sys.stderr,
    )
    return bool(cluster.started)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="scripts/slurm_local.py", description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("start", help="install if needed and start (or reuse) the cluster")
    p.add_argument("--if-possible", action="store_true", help="exit 0 where it cannot run")
    p.add_argument("--max-array-size", type=int, default=None)
    p = sub.add_parser("stop", help="stop the daemons by PID")
    p.add_argument("--force", action="store_true", help="even while another process uses it")
    p = sub.add_parser("status", help="daemon PIDs and whether jobs can run")
    p.add_argument("--json", action="store_true")
    p = sub.add_parser("run", help="start, run a command, stop what was started")
    p.add_argument("--if-possible", action="store_true")
    p.add_argument("--max-array-size", type=int, default=None)
    p.add_argument("command", nargs=argparse.REMAINDER)
    args = ap.parse_args(argv)
    cluster = _cluster(args)
    try:
        if args.cmd == "start":
            _start(cluster, args.if_possible)
            return 0
        if args.cmd == "stop":
            stopped = cluster.stop(force=args.force)
            print(f"stopped: {', '.join(stopped) or 'nothing was running'}", file=sys.stderr)
            return 0
        if args.cmd == "status":
            info = {
                **cluster.describe(),
                "up": cluster.is_up(),
                "unavailable": cluster.unavailable_reason(),
            }
            print(
                json.dumps(info, indent=1)
                if args.json
                else "\n".join(f"{k}: {v}" for k, v in info.items())
            )
            return 0 if info["up"] else 3
        command = list(args.command)
        if command[:1] == ["--"]:
            command = command[1:]
        if not command:
            ap.error("run needs a command after --")
        started = _start(cluster, args.if_possible)
        lease = cluster.acquire_lease() if started is not None else None
        try:
            # the command's own processes (pytest) must not count our lease as another user's
            env = {**os.environ, "BENCH_SLURM_PARENT_LEASE": str(os.getpid())}
            return subprocess.call(command, env=env)
        finally:
            if lease is not None:
                cluster.release_lease(lease)
            if started:
                try:
                    cluster.stop()
                except ClusterError as e:
                    print(f"cluster left running: {e}", file=sys.stderr)
    except ClusterError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
