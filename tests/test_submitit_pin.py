"""benchmark.slurm re-implements one private submitit method (array submission, to keep its
own executor class and ``python``): this pins the submitit release and the exact source of the
method it copies, so an upgrade that changes it fails here instead of submitting differently."""

from __future__ import annotations

import hashlib
import inspect

import submitit
from submitit.slurm import slurm

from benchmark.slurm import _SubmititSlurm

#: sha256 of ``inspect.getsource(SlurmExecutor._internal_process_submissions)`` in 1.5.4
COPIED_SOURCE_SHA256 = "cd71325592178efb7fb6163eb6a7b42c11a1aefe8610d41d1da06e5de2f83d4d"


def test_submitit_is_the_release_the_override_copies() -> None:
    assert submitit.__version__ == "1.5.4"
    src = inspect.getsource(slurm.SlurmExecutor._internal_process_submissions)
    assert hashlib.sha256(src.encode()).hexdigest() == COPIED_SOURCE_SHA256, (
        "submitit's array submission changed: re-read it against "
        "benchmark.slurm._SubmititSlurm._internal_process_submissions")


def test_the_override_differs_from_submitits_only_in_the_array_executor() -> None:
    ours = inspect.getsource(_SubmititSlurm._internal_process_submissions)
    theirs = inspect.getsource(slurm.SlurmExecutor._internal_process_submissions)
    for step in ("get_first_id_independent_folder", "set_timeout(timeout_min, "
                 "self.max_num_timeout)", 'parameters["map_count"] = n', "self._throttle()",
                 "_submit_command(self._submitit_command_str)", "move_temporary_file("):
        assert step in ours and step in theirs, step
    assert "type(self)(self.folder, self.max_num_timeout, python=self.python)" in ours
    assert "SlurmExecutor(self.folder, self.max_num_timeout)" in theirs
