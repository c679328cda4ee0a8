"""The entry point tunes the process it owns before any command imports numpy: numpy's
BLAS runs one thread (no backtest multiplies matrices; its threads cost start-up CPU),
unless the user set the number of threads themselves."""

from __future__ import annotations

import json

import pytest

from tests.security.helpers import environment, python

BLAS_THREADS = """
import json
from kinetic_rules.cli.process import own_process
own_process()
import numpy
from threadpoolctl import threadpool_info
print(json.dumps([pool["num_threads"] for pool in threadpool_info()
                  if pool["internal_api"] == "openblas"]))
"""


def _openblas_threads(**extra: str) -> list[int]:
    env = environment()
    env.pop("OPENBLAS_NUM_THREADS", None)  # the machine's own setting, if any
    env.update(extra)
    done = python(BLAS_THREADS, env=env)
    assert done.returncode == 0, done.stderr
    threads: list[int] = json.loads(done.stdout)
    if not threads:
        pytest.skip("numpy is not built with OpenBLAS here")
    return threads


def test_the_entry_point_runs_numpy_with_one_blas_thread() -> None:
    assert _openblas_threads() == [1]


def test_a_number_of_threads_the_user_chose_is_kept() -> None:
    assert _openblas_threads(OPENBLAS_NUM_THREADS="2") == [2]
