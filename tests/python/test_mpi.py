"""cp_group given as an mpi4py communicator: 2 and 3 MPI processes (mpirun) against float64."""
import os
import shutil
import subprocess
import sys

import pytest

pytest.importorskip("mpi4py", reason="mpi4py is not installed (scripts/bootstrap.sh installs it)")
HERE = os.path.dirname(os.path.abspath(__file__))


@pytest.mark.parametrize("ranks", [2, 3])
def test_cp_functions_over_an_mpi4py_communicator(ranks):
    mpirun = shutil.which("mpirun")
    assert mpirun, "mpirun not found: install openmpi-bin (scripts/bootstrap.sh does)"
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([HERE] + sys.path))
    cmd = [mpirun, "--oversubscribe", "--allow-run-as-root", "-np", str(ranks), sys.executable,
           os.path.join(HERE, "mpi_ranks.py")]
    res = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=180)
    assert res.returncode == 0, res.stdout + res.stderr
    assert res.stdout.count(": ok") == ranks, res.stdout
