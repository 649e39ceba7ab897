"""torch's CPU threads in a model replica: Ray sets OMP_NUM_THREADS to the replica's num_cpus (1 for
ChatGLM), and torch follows it unless the engine says otherwise (BENCHMARKS.md, Serve overhead)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from deployments.engine.checkpoint_engine import cpu_threads

PROBE = """
import json, sys
from deployments.engine import StaticBatchingEngine
engine = StaticBatchingEngine(sys.argv[1], device="cpu", torch_threads=int(sys.argv[2]))
engine.start()
status = engine.status()
print(json.dumps([status["torch_threads"], status["omp_num_threads_env"]]))
"""


def threads_in_a_process_like_a_replica(model_dir, torch_threads: int) -> list:
    """A fresh process with Ray's environment for a num_cpus: 1 replica."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-c", PROBE, str(model_dir), str(torch_threads)]
    output = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert output.returncode == 0, output.stderr[-2000:]
    return json.loads(output.stdout.strip().splitlines()[-1])


def test_unset_torch_threads_use_every_core_not_rays_omp_num_threads(tiny_model_dir):
    cores = len(os.sched_getaffinity(0))
    assert threads_in_a_process_like_a_replica(tiny_model_dir, 0) == [cores, "1"]


def test_torch_threads_set_are_used_as_given(tiny_model_dir):
    assert threads_in_a_process_like_a_replica(tiny_model_dir, 3) == [3, "1"]


def test_on_cuda_unset_threads_leave_torchs_default():
    assert cpu_threads(0, "cuda") == 0
    assert cpu_threads(5, "cuda") == 5
    assert cpu_threads(0, "cpu") == len(os.sched_getaffinity(0))
