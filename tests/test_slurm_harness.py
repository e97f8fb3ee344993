"""The local SLURM test cluster (tests/slurm_cluster.py): up on loopback with accounting,
idempotent start, stop/start by PID, and the skip / CI=true-fail rule of its fixture."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from tests.slurm_cluster import (
    START_ORDER,
    LocalSlurmCluster,
    _is_binary,
    pid_alive,
    provision_blocker,
)

pytest_plugins = ["tests.slurm_fixtures"]  # slurm_cluster, slurm_store

TESTS = Path(__file__).resolve().parent


def _listening(port: int) -> set[str]:
    """Local addresses with a TCP socket listening on ``port`` (from /proc/net/tcp)."""
    addrs = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        local, state = line.split()[1], line.split()[3]
        ip_hex, port_hex = local.split(":")
        if int(port_hex, 16) == port and state == "0A":  # LISTEN
            addrs.add(".".join(str(int(ip_hex[i : i + 2], 16)) for i in (6, 4, 2, 0)))
    return addrs


def _run(*cmd: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=60)


@pytest.mark.slurm
def test_cluster_is_up_on_loopback_with_accounting(slurm_cluster: LocalSlurmCluster) -> None:
    for daemon in START_ORDER:
        pid = slurm_cluster.daemon_pid(daemon)
        assert pid is not None and pid_alive(pid), daemon
    assert "UP" in _run("scontrol", "ping").stdout
    # jobs of earlier tests may still be completing on the node
    assert slurm_cluster.node_state().rstrip("*") in ("idle", "mixed", "allocated", "completing")
    assert _run("sacct", "-X", "-n", "-j", "1").returncode == 0  # accounting works
    assert slurm_cluster.max_array_size_live() == 5
    for port in (6817, 6818, 6819):
        assert _listening(port) == {"127.0.0.1"}, port
    dbd = Path("/etc/slurm/slurmdbd.conf").stat()
    assert stat.S_IMODE(dbd.st_mode) == 0o600 and dbd.st_uid == 0
    out = _run("srun", "-t", "1", "hostname")
    assert out.returncode == 0 and out.stdout.strip() == slurm_cluster.hostname


@pytest.mark.slurm
def test_start_reuses_a_running_cluster(slurm_cluster: LocalSlurmCluster) -> None:
    before = {d: slurm_cluster.daemon_pid(d) for d in START_ORDER}
    t0 = time.monotonic()
    again = LocalSlurmCluster().start()
    assert again.started == [] and time.monotonic() - t0 < 10
    assert {d: again.daemon_pid(d) for d in START_ORDER} == before


@pytest.mark.slurm
def test_stop_and_start_again_by_pid(slurm_cluster: LocalSlurmCluster) -> None:
    if slurm_cluster.other_users():
        pytest.skip(f"another test session uses the cluster: {slurm_cluster.other_users()}")
    pids = {d: slurm_cluster.daemon_pid(d) for d in START_ORDER}
    assert slurm_cluster.stop() == list(reversed(START_ORDER))
    try:
        for daemon, pid in pids.items():
            assert pid is not None and not pid_alive(pid), daemon
            assert not slurm_cluster.pidfile(daemon).exists()
        assert _listening(6817) == set()
        assert "UP" not in _run("scontrol", "ping").stdout
        assert slurm_cluster.stop() == []  # nothing left to stop
    finally:
        slurm_cluster.start()
    assert slurm_cluster.is_up()  # restarted (by us, or by a session that started meanwhile)
    for daemon in START_ORDER:
        pid = slurm_cluster.daemon_pid(daemon)
        assert pid is not None and _is_binary(pid, f"/usr/sbin/{daemon}")
    assert _run("srun", "-t", "1", "true").returncode == 0


def test_provision_blockers() -> None:
    assert provision_blocker(True, 0, [], False) is None
    assert provision_blocker(True, 0, ["slurmctld"], True) is None  # apt-get installs it
    assert "not root" in provision_blocker(True, 1000, [], True)
    assert "apt-get is missing" in provision_blocker(True, 0, ["slurmctld"], False)
    assert "not a Linux" in provision_blocker(False, 0, [], True)


FIXTURE_USER = textwrap.dedent("""
    import sys
    sys.path.insert(0, {repo!r})
    from tests.slurm_fixtures import slurm_cluster  # noqa: F401

    def test_needs_cluster(slurm_cluster):
        assert slurm_cluster is not None
""")


@pytest.mark.parametrize(("ci", "outcome"), [("", "1 skipped"), ("true", "1 error")])
def test_fixture_skips_loudly_or_fails_in_ci(tmp_path: Path, ci: str, outcome: str) -> None:
    """Where the cluster cannot be provisioned: skip with the reason, but fail when CI=true."""
    (tmp_path / "test_user.py").write_text(FIXTURE_USER.format(repo=str(TESTS.parent)))
    env = {**os.environ, "CI": ci, "BENCH_SLURM_TESTS": "off"}
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-rs",
            "-p",
            "no:cacheprovider",
            "-c",
            os.devnull,
            "--rootdir",
            str(tmp_path),
            str(tmp_path / "test_user.py"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        cwd=tmp_path,
    )
    out = proc.stdout + proc.stderr
    assert outcome in out, out
    assert "cannot provision the local SLURM cluster: disabled by BENCH_SLURM_TESTS=off" in out
    if ci:
        assert proc.returncode != 0 and "CI=true requires the SLURM tests to run" in out
    else:
        assert proc.returncode == 0


@pytest.mark.slurm
def test_start_reconfigures_a_cluster_running_other_settings(
    slurm_cluster: LocalSlurmCluster,
) -> None:
    if slurm_cluster.other_users():
        pytest.skip(f"another test session uses the cluster: {slurm_cluster.other_users()}")
    pids = {d: slurm_cluster.daemon_pid(d) for d in START_ORDER}
    try:
        assert LocalSlurmCluster(max_array_size=7).start().max_array_size_live() == 7
    finally:
        slurm_cluster.start()
    assert slurm_cluster.max_array_size_live() == 5
    assert {d: slurm_cluster.daemon_pid(d) for d in START_ORDER} == pids  # no restart
