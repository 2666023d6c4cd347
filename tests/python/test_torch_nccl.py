"""The cp functions over a torch NCCL process group and vLLM-style groups, on 2 GPUs under
torchrun (nccl_ranks.py): both transports against float64, CUDA graphs, torch.compile.
Skipped, with the reason, without torch or with fewer than 2 GPUs."""
import os
import subprocess
import sys

import pytest

torch = pytest.importorskip("torch", reason="torch is not installed (CI installs numpy only)")
HERE = os.path.dirname(os.path.abspath(__file__))


@pytest.mark.gpu(2)
def test_cp_functions_over_torch_nccl_and_vllm_style_groups():
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([HERE] + sys.path), NCCL_NVLS_ENABLE="0",
               TORCH_SYMM_MEM_DISABLE_MULTICAST="1", NVSHMEM_DISABLE_NVLS="1")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2", os.path.join(HERE, "nccl_ranks.py")]
    try:
        res = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=400)
    except subprocess.TimeoutExpired as e:  # say how far the ranks got
        pytest.fail(f"no answer within 400 s; last output: {(e.stdout or b'')[-4000:]!r}")
    assert res.returncode == 0, res.stdout[-4000:] + res.stderr[-4000:]
    assert res.stdout.count(": ok") == 2, res.stdout[-4000:]
