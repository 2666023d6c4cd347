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


@pytest.fixture
def rng():
    return np.random.default_rng(0)
