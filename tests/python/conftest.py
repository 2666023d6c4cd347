import numpy as np
import pytest


def reference_merge(outs, lses, base2=False, kv_lens=None):
    """float64 reference of DESIGN.md section 1: outs [N, B, H, D], lses [N, B, H]."""
    l = lses.astype(np.float64).copy()
    l[np.isnan(l) | (l == np.inf)] = -np.inf
    if kv_lens is not None:
        l[(kv_lens == 0)[:, :, None].repeat(l.shape[2], 2)] = -np.inf
    m = l.max(axis=0)
    empty = m == -np.inf
    m_safe = np.where(empty, 0.0, m)
    ex = np.exp2 if base2 else np.exp
    s = ex(l - m_safe).sum(axis=0)
    with np.errstate(divide="ignore"):
        lse = np.where(empty, -np.inf, m_safe + (np.log2(s) if base2 else np.log(s)))
    w = np.where(empty[None], 0.0, ex(l - np.where(empty, 0.0, lse)[None]))
    data = np.where(w[..., None] == 0, 0.0, outs.astype(np.float64))
    return (w[..., None] * data).sum(axis=0), lse, w


def pytest_configure(config):
    config.addinivalue_line("markers", "gpu(count=1): needs that many CUDA devices; skipped, saying why, where "
                                       "fewer are visible (CI has none)")


def _cuda_devices():
    """CUDA devices torch or cupy sees (the frameworks the GPU tests use); 0 without either."""
    seen = 0
    try:
        import torch
        seen = torch.cuda.device_count() if torch.cuda.is_available() else 0
    except ImportError:
        pass
    try:
        import cupy
        seen = max(seen, cupy.cuda.runtime.getDeviceCount())
    except Exception:  # not installed, or no driver: cupy raises its own runtime error
        pass
    return seen


def pytest_collection_modifyitems(config, items):
    """The one GPU skip of the Python tests: @pytest.mark.gpu or @pytest.mark.gpu(2)."""
    visible = None
    for item in items:
        marker = item.get_closest_marker("gpu")
        if marker is None:
            continue
        if visible is None:
            visible = _cuda_devices()
        need = marker.args[0] if marker.args else 1
        if visible < need:
            item.add_marker(pytest.mark.skip(reason=f"needs {need} CUDA device{'s' if need > 1 else ''}, "
                                                    f"{visible} visible"))


@pytest.fixture
def rng():
    return np.random.default_rng(0)
