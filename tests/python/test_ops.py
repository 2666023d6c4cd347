import math
import threading

import numpy as np
import pytest

import cpattn
from conftest import reference_merge

TOL = {np.float32: 2e-5, np.float16: 1e-3}


def adversarial_lses(rng, n, b, h):
    lses = (rng.standard_normal((n, b, h)) * 4).astype(np.float32)
    u = rng.random((n, b, h))
    lses[u < 0.08] = np.nan
    lses[(u >= 0.08) & (u < 0.12)] = np.inf
    lses[(u >= 0.12) & (u < 0.2)] = -np.inf
    lses[:, 0, :] = -np.inf  # row 0: every partial empty
    return lses


@pytest.mark.parametrize("dtype", [np.float32, np.float16])
@pytest.mark.parametrize("n", [1, 2, 3, 5, 8])
@pytest.mark.parametrize("d", [1, 96, 576])
def test_merge_matches_float64(rng, dtype, n, d):
    b, h = 3, 4
    outs = rng.standard_normal((n, b, h, d)).astype(dtype)
    lses = adversarial_lses(rng, n, b, h)
    outs[np.broadcast_to(np.isneginf(lses)[..., None], outs.shape)] = np.nan  # empty shards hold NaN
    out, lse = cpattn.merge_attn_states(outs, lses)
    ref_out, ref_lse, _ = reference_merge(outs, lses)
    np.testing.assert_allclose(out.astype(np.float64), ref_out, rtol=TOL[dtype], atol=1e-5 * 4)
    np.testing.assert_allclose(lse, ref_lse, rtol=1e-5, atol=1e-5)
    assert np.all(lse[0] == -np.inf) and np.all(out[0] == 0)  # vLLM's Triton function gives NaN here


@pytest.mark.parametrize("n", [1, 2, 3, 6])
@pytest.mark.parametrize("base_e", [True, False])
def test_correct_in_place_matches_float64(rng, n, base_e):
    b, h, d = 5, 3, 96
    out = rng.standard_normal((b, h, d)).astype(np.float32)
    lses = adversarial_lses(rng, n, b, h)
    rank = n - 1
    expect = out.copy()
    res, lse = cpattn.correct_attn_out(out, lses, rank, None, is_lse_base_on_e=base_e)
    assert res is out  # in place, like vLLM's
    _, ref_lse, w = reference_merge(expect[None].repeat(n, 0), lses, base2=not base_e)
    ref = np.where(w[rank][..., None] == 0, 0.0, w[rank][..., None] * expect)
    np.testing.assert_allclose(out, ref, rtol=2e-5, atol=1e-6)
    np.testing.assert_allclose(lse, ref_lse, rtol=1e-5, atol=1e-5)


def test_enable_pdl_is_accepted_and_changes_nothing_on_cpu(rng):
    outs = rng.standard_normal((3, 4, 2, 16)).astype(np.float32)
    lses = adversarial_lses(rng, 3, 4, 2)
    want, want_lse = cpattn.merge_attn_states(outs, lses)
    got, got_lse = cpattn.merge_attn_states(outs, lses, enable_pdl=True)
    assert np.array_equal(got, want) and np.array_equal(got_lse, want_lse, equal_nan=True)
    part = outs[0].copy()
    res, _ = cpattn.correct_attn_out(part, lses, 0, enable_pdl=True)
    ref, _ = cpattn.correct_attn_out(outs[0].copy(), lses, 0)
    assert np.array_equal(res, ref)


def test_correct_accepts_vllms_4d_layouts(rng):
    out = rng.standard_normal((2, 1, 3, 8)).astype(np.float32)
    lses = rng.standard_normal((2, 2, 3, 1)).astype(np.float32)
    expect = out.copy()
    res, lse = cpattn.correct_attn_out(out, lses, 0, cpattn.CPTritonContext())
    assert res.shape == (2, 1, 3, 8) and lse.shape == (2, 3)
    _, _, w = reference_merge(expect[:, 0][None].repeat(2, 0), lses[..., 0])
    np.testing.assert_allclose(out[:, 0], w[0][..., None] * expect[:, 0], rtol=2e-5, atol=1e-6)


def test_kv_lens_masks_garbage(rng):
    outs = rng.standard_normal((2, 2, 3, 4)).astype(np.float32)
    lses = np.full((2, 2, 3), 5.0, np.float32)
    outs[1, 1] = np.nan  # partial 1 of row 1 is empty: kv_len 0, lse garbage
    kv = np.array([[3, 3], [2, 0]], np.int32)
    out, _ = cpattn.merge_attn_states(outs, lses, kv_lens=kv)
    np.testing.assert_allclose(out[1], outs[0, 1], rtol=1e-6)
    np.testing.assert_allclose(out[0], 0.5 * (outs[0, 0] + outs[1, 0]), rtol=1e-6)


@pytest.mark.parametrize("dtype", [np.float32, np.float16, np.uint8, np.int64, np.float64])
def test_pack_unpack_roundtrip(rng, dtype):
    lengths = [3, 0, 5, 1]
    x = (rng.standard_normal((9, 4, 2)) * 10).astype(dtype)
    pad = 0 if np.issubdtype(dtype, np.integer) else -math.inf
    packed = cpattn.pack_seq(x, np.array(lengths, np.int32), pad)
    assert packed.shape == (4, 5, 4, 2)
    start = np.concatenate([[0], np.cumsum(lengths)])
    for b, n in enumerate(lengths):
        np.testing.assert_array_equal(packed[b, :n], x[start[b]:start[b] + n])
        assert np.all(packed[b, n:] == pad)
    back = cpattn.unpack_seq(packed, lengths)
    np.testing.assert_array_equal(back, x)
    # vLLM's names and signatures
    np.testing.assert_array_equal(cpattn.unpack_seq_triton(cpattn.pack_seq_triton(x, np.array(lengths), pad), np.array(lengths)), x)


def test_pack_max_len_truncates_and_cu_seqlens(rng):
    x = rng.standard_normal((8, 3)).astype(np.float32)
    cu = np.array([0, 5, 6, 8], np.int64)
    packed = cpattn.pack_seq(x, None, 0.0, max_len=2, cu_seqlens=cu)
    assert packed.shape == (3, 2, 3)
    np.testing.assert_array_equal(packed[0], x[0:2])
    np.testing.assert_array_equal(packed[1, 0], x[5])
    assert np.all(packed[1, 1] == 0)
    full = cpattn.pack_seq(x, None, 0.0, cu_seqlens=cu)
    np.testing.assert_array_equal(cpattn.unpack_seq(full, None, total=8, cu_seqlens=cu), x)


@pytest.mark.parametrize("cu", [False, True])
@pytest.mark.parametrize("max_len", [None, 6])
def test_padded_token_batch(rng, cu, max_len):
    """sum(lengths) < T: the rows past the sum (NaN here) are never read by pack and never
    written by unpack; unpack with total past the sum gives zeros there in a new output."""
    lengths = np.array([3, 0, 5], np.int64)
    x = rng.standard_normal((12, 4)).astype(np.float32)
    x[8:] = np.nan
    args = dict(cu_seqlens=np.concatenate([[0], np.cumsum(lengths)])) if cu else dict(lengths=lengths)
    packed = cpattn.pack_seq(x, pad_value=0.0, max_len=max_len, **args)
    assert packed.shape == (3, max_len or 5, 4) and not np.isnan(packed).any()
    np.testing.assert_array_equal(packed[2, :5], x[3:8])
    fresh = cpattn.unpack_seq(packed, total=12, **args)
    np.testing.assert_array_equal(fresh[:8], x[:8])
    assert np.all(fresh[8:] == 0)
    given = np.full((12, 4), 7.0, np.float32)
    cpattn.unpack_seq(packed, total=12, out=given, **args)
    np.testing.assert_array_equal(given[:8], x[:8])
    assert np.all(given[8:] == 7.0)
    assert cpattn.unpack_seq(packed, **args).shape == (8, 4)


@pytest.mark.parametrize("call, error", [
    (lambda: cpattn.merge_attn_states(np.zeros((2, 3, 4), np.float32), np.zeros((2, 3), np.float32)), ValueError),
    (lambda: cpattn.merge_attn_states(np.zeros((2, 3, 4, 8), np.float32), np.zeros((2, 3, 5), np.float32)), ValueError),
    (lambda: cpattn.merge_attn_states(np.zeros((2, 3, 4, 8), np.int32), np.zeros((2, 3, 4), np.float32)), ValueError),
    (lambda: cpattn.merge_attn_states(np.zeros((2, 3, 4, 8), np.complex64), np.zeros((2, 3, 4), np.float32)), TypeError),
    (lambda: cpattn.correct_attn_out(np.zeros((3, 4, 8), np.float32), np.zeros((2, 3, 4), np.float32), 2, None), ValueError),
    (lambda: cpattn.pack_seq(np.zeros((5, 2), np.float32), [3, 3]), ValueError),  # sum 6 past T = 5
    (lambda: cpattn.pack_seq(np.zeros((4, 2), np.int32), [2, 2]), ValueError),  # -inf pad in int32
    (lambda: cpattn.pack_seq(np.zeros((4, 2), np.float32), [2, -1, 3]), ValueError),
    (lambda: cpattn.unpack_seq(np.zeros((2, 2, 3), np.float32), [1, 3]), ValueError),
    (lambda: cpattn.cp_lse_ag_out_rs(np.zeros((2, 4, 8), np.float32), np.zeros((2, 4), np.float32), object()), TypeError),
])
def test_bad_input_raises_named_errors(call, error):
    with pytest.raises(error, match="cpattn: invalid"):
        call()


class ThreadGroup:
    """A vLLM-style group whose ranks are threads (numpy arrays), for the duck-typing test."""

    def __init__(self, shared, rank):
        self.world_size, self.rank_in_group, self._s = shared["n"], rank, shared

    def _exchange(self, t):
        s = self._s
        s["slots"][self.rank_in_group] = t
        s["barrier"].wait()
        got = list(s["slots"])
        s["barrier"].wait()
        return got

    def all_gather(self, t, dim=0):
        return np.concatenate(self._exchange(t), axis=dim)

    def reduce_scatter(self, t, dim=0):
        total = np.sum(np.stack([x.astype(np.float64) for x in self._exchange(t)]), axis=0).astype(t.dtype)
        return np.split(total, self.world_size, axis=dim)[self.rank_in_group]

    def all_reduce(self, t):
        return np.sum(np.stack([x.astype(np.float64) for x in self._exchange(t)]), axis=0).astype(t.dtype)


@pytest.mark.parametrize("n", [1, 2, 3, 4])
@pytest.mark.parametrize("op", ["rs", "ar", "a2a"])
def test_cp_functions_with_a_duck_typed_group(rng, n, op):
    b, h, d = 4, 2 * n, 16
    outs = rng.standard_normal((n, b, h, d)).astype(np.float32)
    lses = rng.standard_normal((n, b, h)).astype(np.float32)
    kv = np.ones((n, b), np.int32)
    kv[:, 0] = 0  # row 0 empty everywhere
    if n > 1:
        kv[1, 1] = 0
    outs[kv == 0] = np.nan
    ref_out, ref_lse, _ = reference_merge(outs, lses, kv_lens=kv)
    shared = {"n": n, "slots": [None] * n, "barrier": threading.Barrier(n)}
    results, errors = [None] * n, []
    fn = {"rs": cpattn.cp_lse_ag_out_rs, "ar": cpattn.cp_lse_ag_out_ar, "a2a": cpattn.cp_lse_a2a_merge}[op]

    def rank_main(r):
        try:
            results[r] = fn(outs[r].copy(), lses[r].copy(), ThreadGroup(shared, r), return_lse=True, kv_lens=kv[r])
        except Exception as e:  # noqa: BLE001  (reported below)
            errors.append(e)
            shared["barrier"].abort()

    threads = [threading.Thread(target=rank_main, args=(r,)) for r in range(n)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    assert not errors, errors
    for r, (out, lse) in enumerate(results):
        if n == 1:
            np.testing.assert_array_equal(out, outs[0])  # world size 1: the input, untouched
            continue
        heads = slice(None) if op == "ar" else slice(r * (h // n), (r + 1) * (h // n))
        np.testing.assert_allclose(out, ref_out[:, heads], rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(lse, ref_lse[:, heads], rtol=1e-5, atol=1e-5)
