"""The store: where everything the suite writes lives, and how it is written.

:mod:`.files` — the roots (``$BENCH_RESULTS``, ``$BENCH_ARTIFACTS``, ``$BENCH_DATA``,
``$BENCH_WEIGHTS``), atomic writes, hashing, locks. :mod:`.cells` — the cell layout: the one
object per directory that knows its paths and writes its files. Import from here.
"""

from benchmark.store.cells import (
    Cell,
    EvaluationDir,
    TrainingDir,
    list_cells,
    record_checksum,
    record_problem,
)
from benchmark.store.files import (
    REPO_ROOT,
    LockTimeout,
    WrittenTogether,
    artifacts_root,
    atomic_write_bytes,
    atomic_write_json,
    atomic_write_text,
    canonical_json,
    data_root,
    environment,
    file_lock,
    remove_stray_temp_files,
    results_root,
    sha256_bytes,
    sha256_file,
    sha256_lines,
    warn,
    weights_root,
)

__all__ = [
    "Cell",
    "EvaluationDir",
    "LockTimeout",
    "REPO_ROOT",
    "TrainingDir",
    "WrittenTogether",
    "artifacts_root",
    "atomic_write_bytes",
    "atomic_write_json",
    "atomic_write_text",
    "canonical_json",
    "data_root",
    "file_lock",
    "list_cells",
    "record_checksum",
    "record_problem",
    "remove_stray_temp_files",
    "results_root",
    "sha256_bytes",
    "sha256_file",
    "sha256_lines",
    "warn",
    "weights_root",
    "environment",
]
