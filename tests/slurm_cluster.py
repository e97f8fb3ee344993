"""A real single-node SLURM cluster on loopback, for tests.

munged, mariadbd (private datadir, socket only), slurmdbd, slurmctld and slurmd run as
background processes started here; their PIDs are kept under ``<state_dir>/run/`` so any
process (pytest, ``scripts/slurm_local.py``) can stop them later, in reverse order, by
PID. Starting is idempotent: daemons already running from an earlier start are reused.
Settings for Debian 12's Slurm 22.05 packages (slurm-wlm), as its slurm.conf(5) documents them.

Usage::

    cluster = LocalSlurmCluster()
    if (why := cluster.unavailable_reason()) is None:
        cluster.start()        # installs the packages if missing, then starts the daemons
        ...
        cluster.stop()

The test cluster sets ``MaxArraySize`` low (5 by default) so that splitting large job
arrays is exercised with a handful of tasks.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from benchmark.store import file_lock

PACKAGES = ("slurm-wlm", "munge", "slurmdbd", "mariadb-server")
BINARIES = {
    "munged": "/usr/sbin/munged",
    "mariadbd": "/usr/sbin/mariadbd",
    "slurmdbd": "/usr/sbin/slurmdbd",
    "slurmctld": "/usr/sbin/slurmctld",
    "slurmd": "/usr/sbin/slurmd",
}
CLIENTS = ("sbatch", "squeue", "sacct", "sacctmgr", "scontrol", "sinfo", "srun", "munge")
START_ORDER = ("munged", "mariadbd", "slurmdbd", "slurmctld", "slurmd")
MYSQL_SOCKET = Path("/run/mysqld/mysqld.sock")  # libmariadb's compiled-in default
MUNGE_KEY = Path("/etc/munge/munge.key")
DB_USER, DB_PASS, DB_NAME = "slurm", "bench-slurm-test", "slurm_acct_db"
DEFAULT_STATE_DIR = Path(os.environ.get("BENCH_SLURM_STATE", "/tmp/bench-slurm"))


class ClusterError(RuntimeError):
    """The cluster could not be installed, started or stopped."""


def _which(name: str) -> str | None:
    return shutil.which(name, path=os.environ.get("PATH", "") + ":/usr/sbin:/sbin")


def _run(
    cmd: list[str], timeout: float = 30, check: bool = False, **kw: object
) -> subprocess.CompletedProcess[str]:
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, **kw)  # type: ignore[call-overload]
    except subprocess.TimeoutExpired as e:
        raise ClusterError(f"{' '.join(cmd)}: no answer within {timeout:.0f} s") from e
    if check and proc.returncode != 0:
        raise ClusterError(
            f"{' '.join(cmd)} exited {proc.returncode}: {(proc.stderr or proc.stdout).strip()}"
        )
    return proc


def _wait_for(
    what: str, probe: Callable[[], bool], timeout: float, log: Path | None = None
) -> None:
    """Poll ``probe`` until it is true; raise after ``timeout`` seconds naming ``what``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if probe():
            return
        time.sleep(0.2)
    tail = ""
    if log is not None and log.exists():
        tail = "\n  last log lines:\n    " + "\n    ".join(
            log.read_text(errors="replace").splitlines()[-15:]
        )
    raise ClusterError(f"{what} not ready after {timeout:.0f} s{tail}")


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # a zombie (exited child not yet reaped) is not alive
    with contextlib.suppress(OSError):
        if Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z":
            return False
    return True


def _is_binary(pid: int, binary: str) -> bool:
    """Does ``pid`` run ``binary``? (/proc/PID/exe; the cmdline can be blank while a daemon
    rewrites its process title.)"""
    try:
        return os.path.realpath(os.readlink(f"/proc/{pid}/exe")) == os.path.realpath(binary)
    except OSError:
        try:
            return Path(f"/proc/{pid}/comm").read_text().strip() == Path(binary).name[:15]
        except OSError:
            return False


def provision_blocker(linux: bool, euid: int, missing: list[str], apt: bool) -> str | None:
    """Why a machine with these properties cannot host the cluster (None when it can)."""
    if not linux:
        return "not a Linux machine (/proc missing)"
    if euid != 0:
        return f"not root (euid {euid}): the daemons and apt-get need root"
    if missing and not apt:
        return f"SLURM is not installed ({', '.join(missing)}) and apt-get is missing"
    return None


@dataclass
class LocalSlurmCluster:
    """One SLURM cluster on this machine: config in ``conf_dir``, state in ``state_dir``."""

    state_dir: Path = DEFAULT_STATE_DIR
    conf_dir: Path = Path("/etc/slurm")
    cluster_name: str = "benchlocal"
    partition: str = "debug"
    max_array_size: int = 5
    hostname: str = field(default_factory=lambda: socket.gethostname().split(".")[0])
    started: list[str] = field(default_factory=list)  # daemons this object started

    # ------------------------------------------------------------------ paths
    @property
    def run_dir(self) -> Path:
        return self.state_dir / "run"

    @property
    def log_dir(self) -> Path:
        return self.state_dir / "log"

    @property
    def slurm_conf(self) -> Path:
        return self.conf_dir / "slurm.conf"

    def pidfile(self, daemon: str) -> Path:
        return self.run_dir / f"{daemon}.pid"

    def log(self, daemon: str) -> Path:
        return self.log_dir / f"{daemon}.log"

    # ------------------------------------------------------------ feasibility
    def unavailable_reason(self) -> str | None:
        """Why this machine cannot host the cluster (None when it can)."""
        if os.environ.get("BENCH_SLURM_TESTS", "").lower() == "off":
            return "disabled by BENCH_SLURM_TESTS=off"
        return provision_blocker(
            linux=Path("/proc/self").exists(),
            euid=os.geteuid(),
            missing=self.missing_binaries(),
            apt=_which("apt-get") is not None,
        )

    def missing_binaries(self) -> list[str]:
        missing = [n for n, p in BINARIES.items() if not Path(p).exists()]
        return missing + [
            c for c in (*CLIENTS, "mariadb", "mariadb-install-db") if _which(c) is None
        ]

    def ensure_installed(self, timeout: float = 900) -> None:
        """apt-get install the packages (no recommends) when any binary is missing."""
        if not self.missing_binaries():
            return
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        cmd = ["apt-get", "install", "-y", "-q", "--no-install-recommends", *PACKAGES]
        proc = _run(cmd, timeout=timeout, env=env)
        if proc.returncode != 0:  # stale package lists: update once, then retry
            _run(["apt-get", "update", "-q"], timeout=timeout, env=env, check=True)
            _run(cmd, timeout=timeout, env=env, check=True)
        if missing := self.missing_binaries():
            raise ClusterError(f"apt-get install {' '.join(PACKAGES)} left {missing} missing")

    # ----------------------------------------------------------------- locking
    def _lock(self, timeout: float = 300) -> contextlib.AbstractContextManager:
        """Serialise start/stop between processes (several test sessions may share a cluster)."""
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.state_dir.chmod(0o755)
        return file_lock(self.state_dir / "harness.lock", timeout)

    # ------------------------------------------------------------------ leases
    def acquire_lease(self) -> Path:
        """Record that this process uses the cluster; ``stop()`` waits for no other user."""
        leases = self.state_dir / "leases"
        leases.mkdir(parents=True, exist_ok=True)
        path = leases / f"{os.getpid()}-{time.monotonic_ns()}"
        path.write_text(str(os.getpid()))
        return path

    def release_lease(self, lease: Path) -> None:
        lease.unlink(missing_ok=True)

    def other_users(self) -> list[int]:
        """PIDs of other live processes holding a lease (not ours, nor that of the
        ``slurm_local.py run`` wrapper that started this process)."""
        ours = {os.getpid(), int(os.environ.get("BENCH_SLURM_PARENT_LEASE", "0") or 0)}
        pids = []
        for lease in (self.state_dir / "leases").glob("*"):
            with contextlib.suppress(ValueError, OSError):
                pid = int(lease.read_text())
                if pid not in ours and pid_alive(pid):
                    pids.append(pid)
                elif not pid_alive(pid):
                    lease.unlink(missing_ok=True)
        return pids

    # ------------------------------------------------------------- daemon pids
    def daemon_pid(self, daemon: str) -> int | None:
        """PID of our running ``daemon`` (checked against /proc), else None."""
        try:
            pid = int(self.pidfile(daemon).read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None
        if pid_alive(pid) and _is_binary(pid, BINARIES[daemon]):
            return pid
        return None

    def _spawn(self, daemon: str, args: list[str], **kw: object) -> int:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        out = open(self.log_dir / f"{daemon}.stdout", "ab")  # noqa: SIM115 (child keeps it)
        proc = subprocess.Popen(  # type: ignore[call-overload]
            [BINARIES[daemon], *args],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # outlives the starting process; stopped by PID
            close_fds=True,
            **kw,
        )
        out.close()
        self.pidfile(daemon).write_text(f"{proc.pid}\n")
        self.started.append(daemon)
        return proc.pid

    def _ensure_running(self, daemon: str, timeout: float) -> None:
        pid = self.daemon_pid(daemon)
        ready = getattr(self, f"_{daemon}_ready")
        if pid is None and not (daemon in ("munged", "mariadbd") and ready()):
            getattr(self, f"_start_{daemon}")()
        # an exited child shows up here as "not ready" with its log tail
        _wait_for(
            daemon, lambda: self._alive_or_raise(daemon) and ready(), timeout, self.log(daemon)
        )

    def _alive_or_raise(self, daemon: str) -> bool:
        if daemon in self.started and self.daemon_pid(daemon) is None:
            log = self.log_dir / f"{daemon}.stdout"
            tails = []
            for p in (log, self.log(daemon)):
                if p.exists():
                    tails += p.read_text(errors="replace").splitlines()[-10:]
            raise ClusterError(f"{daemon} exited during start:\n    " + "\n    ".join(tails))
        return True

    # ------------------------------------------------------------------- munge
    def _munged_ready(self) -> bool:
        enc = _run(["munge", "-n"], timeout=10)
        if enc.returncode != 0:
            return False
        return _run(["unmunge"], timeout=10, input=enc.stdout).returncode == 0

    def _start_munged(self) -> None:
        if not MUNGE_KEY.exists():
            MUNGE_KEY.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            MUNGE_KEY.write_bytes(os.urandom(128))
        for d, mode in (
            (MUNGE_KEY.parent, 0o700),
            (Path("/run/munge"), 0o755),
            (Path("/var/lib/munge"), 0o711),
            (Path("/var/log/munge"), 0o700),
        ):
            d.mkdir(parents=True, exist_ok=True)
            shutil.chown(d, "munge", "munge")
            d.chmod(mode)
        shutil.chown(MUNGE_KEY, "munge", "munge")
        MUNGE_KEY.chmod(0o400)
        self._spawn("munged", ["-F"], user="munge", group="munge")  # logs to munged.stdout

    # ----------------------------------------------------------------- mariadb
    def _sql(self, statement: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
        return _run(
            ["mariadb", "--no-defaults", "-S", str(MYSQL_SOCKET), "-u", "root", "-e", statement],
            timeout=timeout,
        )

    def _mariadbd_ready(self) -> bool:
        return MYSQL_SOCKET.exists() and self._sql("SELECT 1", timeout=10).returncode == 0

    def _start_mariadbd(self) -> None:
        datadir = self.state_dir / "mysql"
        self.log_dir.mkdir(parents=True, exist_ok=True)
        if not (datadir / "mysql").is_dir():
            shutil.rmtree(datadir, ignore_errors=True)
            datadir.mkdir(parents=True)
            shutil.chown(datadir, "mysql", "mysql")
            _run(
                [
                    "mariadb-install-db",
                    "--no-defaults",
                    f"--datadir={datadir}",
                    "--user=mysql",
                    "--auth-root-authentication-method=socket",
                    "--skip-test-db",
                ],
                timeout=180,
                check=True,
            )
        MYSQL_SOCKET.parent.mkdir(parents=True, exist_ok=True)
        shutil.chown(MYSQL_SOCKET.parent, "mysql", "mysql")
        log = self.log("mariadbd")
        log.touch()
        shutil.chown(log, "mysql", "mysql")
        self._spawn(
            "mariadbd",
            [
                "--no-defaults",
                f"--datadir={datadir}",
                f"--socket={MYSQL_SOCKET}",
                "--skip-networking",
                "--user=mysql",
                f"--log-error={log}",
                f"--pid-file={datadir / 'mariadbd.pid'}",
                "--innodb-buffer-pool-size=128M",
                "--innodb-lock-wait-timeout=900",
                "--innodb-log-file-size=64M",
                "--max-connections=200",
            ],
        )

    def _create_database(self) -> None:
        sql = (
            f"CREATE DATABASE IF NOT EXISTS {DB_NAME};"
            f"CREATE USER IF NOT EXISTS '{DB_USER}'@'localhost' IDENTIFIED BY '{DB_PASS}';"
            f"GRANT ALL ON {DB_NAME}.* TO '{DB_USER}'@'localhost'; FLUSH PRIVILEGES;"
        )
        proc = self._sql(sql)
        if proc.returncode != 0:
            raise ClusterError(f"creating {DB_NAME}: {proc.stderr.strip()}")

    # ----------------------------------------------------------------- configs
    def _node_memory_mb(self) -> int:
        out = _run([BINARIES["slurmd"], "-C"], timeout=30, check=True).stdout
        for tok in out.split():
            if tok.startswith("RealMemory="):
                return max(256, int(int(tok.split("=", 1)[1]) * 0.9))
        raise ClusterError(f"slurmd -C printed no RealMemory: {out!r}")

    def slurm_conf_text(self) -> str:
        s = self.state_dir
        return "\n".join(
            [
                "# Written by tests/slurm_cluster.py: single-node test cluster on loopback.",
                f"ClusterName={self.cluster_name}",
                f"SlurmctldHost={self.hostname}(127.0.0.1)",
                "SlurmctldPort=6817",
                "SlurmdPort=6818",
                "AuthType=auth/munge",
                "CredType=cred/munge",
                "AuthInfo=cred_expire=10",
                "CommunicationParameters=NoCtldInAddrAny,NoInAddrAny",
                "SlurmUser=root",
                "SlurmdUser=root",
                f"StateSaveLocation={s}/ctld",
                f"SlurmdSpoolDir={s}/slurmd",
                f"SlurmctldPidFile={self.run_dir}/slurmctld.self.pid",
                f"SlurmdPidFile={self.run_dir}/slurmd.self.pid",
                f"SlurmctldLogFile={self.log('slurmctld')}",
                f"SlurmdLogFile={self.log('slurmd')}",
                "ProctrackType=proctrack/linuxproc",
                "TaskPlugin=task/none",
                "JobAcctGatherType=jobacct_gather/none",
                "AccountingStorageType=accounting_storage/slurmdbd",
                "AccountingStorageHost=127.0.0.1",
                "AccountingStoragePort=6819",
                "JobCompType=jobcomp/none",
                "SchedulerType=sched/backfill",
                "SchedulerParameters=bf_interval=1,sched_interval=1,sched_min_interval=100000,"
                "batch_sched_delay=0",  # sched_interval=1: a requeued job starts once eligible
                "SelectType=select/cons_tres",
                "SelectTypeParameters=CR_Core",
                "MailProg=/bin/true",
                "KillWait=5",
                "MinJobAge=300",
                "ReturnToService=2",
                "InactiveLimit=0",
                f"MaxArraySize={self.max_array_size}",
                "MaxJobCount=20000",
                f"NodeName={self.hostname} NodeAddr=127.0.0.1 CPUs={os.cpu_count() or 1} "
                f"RealMemory={self._node_memory_mb()} State=UNKNOWN",
                f"PartitionName={self.partition} Nodes={self.hostname} Default=YES "
                "MaxTime=INFINITE State=UP",
                "",
            ]
        )

    def slurmdbd_conf_text(self) -> str:
        return "\n".join(
            [
                "# Written by tests/slurm_cluster.py",
                "AuthType=auth/munge",
                "DbdAddr=127.0.0.1",
                "DbdHost=localhost",
                "DbdPort=6819",
                "CommunicationParameters=NoInAddrAny",  # bind DbdHost (loopback), not 0.0.0.0
                "SlurmUser=root",
                f"LogFile={self.log('slurmdbd')}",
                f"PidFile={self.run_dir}/slurmdbd.self.pid",
                "StorageType=accounting_storage/mysql",
                "StorageHost=localhost",
                f"StorageUser={DB_USER}",
                f"StoragePass={DB_PASS}",
                f"StorageLoc={DB_NAME}",
                "",
            ]
        )

    def write_configs(self) -> None:
        self.conf_dir.mkdir(parents=True, exist_ok=True)
        for sub in ("ctld", "slurmd", "run", "log"):
            (self.state_dir / sub).mkdir(parents=True, exist_ok=True)
        self.slurm_conf.write_text(self.slurm_conf_text())
        self.slurm_conf.chmod(0o644)
        dbd = self.conf_dir / "slurmdbd.conf"
        dbd.write_text(self.slurmdbd_conf_text())
        os.chown(dbd, 0, 0)
        dbd.chmod(0o600)

    # ------------------------------------------------------------------- slurm
    def _slurmdbd_ready(self) -> bool:
        return (
            _run(
                ["sacctmgr", "-n", "-P", "show", "cluster", "format=cluster"], timeout=15
            ).returncode
            == 0
        )

    def _start_slurmdbd(self) -> None:
        self._spawn("slurmdbd", ["-D"])

    def _register_cluster(self) -> None:
        out = _run(
            ["sacctmgr", "-n", "-P", "show", "cluster", "format=cluster"], timeout=15, check=True
        ).stdout.split()
        if self.cluster_name not in out:
            _run(["sacctmgr", "-i", "add", "cluster", self.cluster_name], timeout=30, check=True)

    def _slurmctld_ready(self) -> bool:
        return "UP" in _run(["scontrol", "ping"], timeout=15).stdout

    def _start_slurmctld(self) -> None:
        self._spawn("slurmctld", ["-D"])

    def node_state(self) -> str:
        out = _run(["sinfo", "-h", "-N", "-n", self.hostname, "-o", "%T"], timeout=15).stdout
        return out.strip().lower()

    def _slurmd_ready(self) -> bool:
        state = self.node_state()
        if state.startswith(("down", "drain", "fail")) or state.endswith("drain"):
            _run(["scontrol", "update", f"nodename={self.hostname}", "state=resume"], timeout=15)
            return False
        return state.rstrip("*") in ("idle", "mixed", "allocated", "completing")

    def _start_slurmd(self) -> None:
        self._spawn("slurmd", ["-D"])

    # --------------------------------------------------------------- lifecycle
    def is_up(self) -> bool:
        """All five daemons answer and accounting (sacct) works."""
        try:
            return (
                self._munged_ready()
                and self._mariadbd_ready()
                and self._slurmdbd_ready()
                and self._slurmctld_ready()
                and self._slurmd_ready()
                and _run(["sacct", "-n", "-X", "-j", "1"], timeout=15).returncode == 0
            )
        except (ClusterError, FileNotFoundError):
            return False

    def start(self, timeout: float = 120) -> LocalSlurmCluster:
        """Install if needed, then start what is not running; return once jobs can run."""
        if (why := self.unavailable_reason()) is not None:
            raise ClusterError(f"cannot provision a SLURM cluster here: {why}")
        self.ensure_installed()
        with self._lock():
            if self.is_up():
                if not self._config_current():
                    self.write_configs()
                    _run(["scontrol", "reconfigure"], timeout=60, check=True)
                    _wait_for("scontrol reconfigure", self._config_current, timeout)
                return self
            self.started = []
            self._ensure_running("munged", timeout)
            self._ensure_running("mariadbd", timeout)
            self._create_database()
            if self.daemon_pid("slurmctld") is None:  # keep a running controller's config
                self.write_configs()
            self._ensure_running("slurmdbd", timeout)
            self._register_cluster()
            self._ensure_running("slurmctld", timeout)
            self._ensure_running("slurmd", timeout)
            if "slurmd" in self.started or "slurmctld" in self.started:
                self.smoke_test(timeout)
            (self.state_dir / "cluster.json").write_text(json.dumps(self.describe(), indent=1))
        return self

    def _config_current(self) -> bool:
        """A running cluster is reused as is only if it runs our current slurm.conf."""
        try:
            on_disk = self.slurm_conf.read_text()
        except OSError:
            return False
        return (
            on_disk == self.slurm_conf_text() and self.max_array_size == self.max_array_size_live()
        )

    def max_array_size_live(self) -> int | None:
        out = _run(["scontrol", "show", "config"], timeout=15).stdout
        for line in out.splitlines():
            key, _, value = line.partition("=")
            if key.strip() == "MaxArraySize":
                return int(value.strip())
        return None

    def smoke_test(self, timeout: float = 60) -> None:
        proc = _run(
            ["srun", "-N1", "-n1", "-t", "1", "--quit-on-interrupt", "hostname"], timeout=timeout
        )
        if proc.returncode != 0 or not proc.stdout.strip():
            raise ClusterError(f"srun hostname failed: {proc.stderr.strip()}")

    def stop(self, timeout: float = 30, force: bool = False) -> list[str]:
        """Stop our daemons in reverse start order, by PID (SIGTERM, then SIGKILL).

        Without ``force`` nothing is stopped while another process holds a lease.
        Returns the daemons stopped.
        """
        with self._lock():
            if not force and (users := self.other_users()):
                raise ClusterError(f"cluster in use by PIDs {users}; stop(force=True) to stop it")
            stopped = []
            for daemon in reversed(START_ORDER):
                pid = self.daemon_pid(daemon)
                if pid is None:
                    self.pidfile(daemon).unlink(missing_ok=True)
                    continue
                os.kill(pid, signal.SIGTERM)
                deadline = time.monotonic() + timeout
                while pid_alive(pid) and time.monotonic() < deadline:
                    with contextlib.suppress(ChildProcessError):
                        os.waitpid(pid, os.WNOHANG)
                    time.sleep(0.1)
                if pid_alive(pid):
                    os.kill(pid, signal.SIGKILL)
                    with contextlib.suppress(ChildProcessError):
                        os.waitpid(pid, 0)
                self.pidfile(daemon).unlink(missing_ok=True)
                stopped.append(daemon)
            self.started = []
            return stopped

    def describe(self) -> dict[str, object]:
        return {
            "cluster": self.cluster_name,
            "partition": self.partition,
            "hostname": self.hostname,
            "max_array_size": self.max_array_size,
            "state_dir": str(self.state_dir),
            "conf_dir": str(self.conf_dir),
            "pids": {d: self.daemon_pid(d) for d in START_ORDER},
        }
