"""merge_attn_states_varlen and return_lse, on numpy arrays (CI runs these without torch):
against a float64 reference written here, with adversarial LSEs, empty partials holding NaN,
rows with no partials, int32/int64 offsets, strided views, zero sizes and base-2 LSEs."""
import numpy as np
import pytest

import cpattn
from conftest import reference_merge
from test_ops import TOL, adversarial_lses


def reference_varlen(outs, lses, offsets, base2=False):
    """float64: row b merges partials [offsets[b], offsets[b + 1]) of outs [P, H, D], lses [P, H];
    a row with none gets lse -inf and out 0."""
    batch, (_, h, d) = len(offsets) - 1, outs.shape
    out, lse = np.zeros((batch, h, d)), np.full((batch, h), -np.inf)
    for b in range(batch):
        lo, hi = int(offsets[b]), int(offsets[b + 1])
        if hi > lo:
            o, l, _ = reference_merge(outs[lo:hi, None], lses[lo:hi, None], base2=base2)
            out[b], lse[b] = o[0], l[0]
    return out, lse


def varlen_batch(rng, counts, h, d, dtype=np.float32, offsets_dtype=np.int32):
    """Partials for rows of `counts` partials each: adversarial LSEs, NaN data in every empty
    partial, one unnamed partial of NaN data past the last row."""
    offsets = np.concatenate([[0], np.cumsum(counts)]).astype(offsets_dtype)
    p = int(offsets[-1]) + 1
    outs = rng.standard_normal((p, h, d)).astype(dtype)
    lses = adversarial_lses(rng, p, 2, h)[:, 1]  # row 0 of adversarial_lses is all -inf
    lses[-1] = 1e4  # past offsets[B]: never read, or it would take every weight
    outs[np.broadcast_to(~np.isfinite(lses)[..., None], outs.shape)] = np.nan
    outs[-1] = np.nan
    return outs, lses, offsets


def check(got_out, got_lse, outs, lses, offsets, base2=False):
    ref_out, ref_lse = reference_varlen(outs, lses, offsets, base2)
    tol = TOL.get(outs.dtype.type, 2e-5)
    np.testing.assert_allclose(got_out.astype(np.float64), ref_out, rtol=tol, atol=4 * tol)
    if got_lse is not None:
        np.testing.assert_allclose(got_lse, ref_lse, rtol=1e-5, atol=1e-5)
    empty = np.diff(np.asarray(offsets, np.int64)) == 0
    assert np.all(got_out[empty] == 0)  # exact zeros, never NaN, for a row with no partials
    if got_lse is not None:
        assert np.all(got_lse[empty] == -np.inf)


@pytest.mark.parametrize("dtype", [np.float32, np.float16])
@pytest.mark.parametrize("offsets_dtype", [np.int32, np.int64])
@pytest.mark.parametrize("counts", [[2, 0, 5, 1, 16, 3], [0], [0, 0, 0], [1], [7, 0], list(range(17))])
@pytest.mark.parametrize("d", [1, 96])
def test_varlen_matches_float64(rng, dtype, offsets_dtype, counts, d):
    outs, lses, offsets = varlen_batch(rng, counts, 3, d, dtype, offsets_dtype)
    out, lse = cpattn.merge_attn_states_varlen(outs, lses, offsets)
    assert out.shape == (len(counts), 3, d) and out.dtype == dtype and lse.dtype == lses.dtype
    check(out, lse, outs, lses, offsets)


@pytest.mark.parametrize("base_e", [True, False])
def test_varlen_base_2_and_all_empty_rows(rng, base_e):
    outs, lses, offsets = varlen_batch(rng, [3, 4, 0, 2], 4, 16)
    lses[0:3] = np.array([-np.inf, np.nan, np.inf])[:, None]  # row 0: every partial empty, data NaN
    outs[0:3] = np.nan
    out, lse = cpattn.merge_attn_states_varlen(outs, lses, offsets, is_lse_base_on_e=base_e)
    check(out, lse, outs, lses, offsets, base2=not base_e)
    assert np.all(out[0] == 0) and np.all(lse[0] == -np.inf)


def test_varlen_strided_views_and_given_out(rng):
    outs, lses, offsets = varlen_batch(rng, [2, 1, 0, 4], 3, 8)
    wide = np.full((outs.shape[0], 3, 16), np.nan, np.float32)
    wide[:, :, ::2] = outs  # D stride 2
    lse_t = np.full((3, outs.shape[0]), np.nan, np.float32).T  # [P, H], column-major
    lse_t[:] = lses
    off_wide = np.zeros(2 * len(offsets), np.int64)
    off_wide[::2] = offsets
    given = np.full((4, 3, 16), 7.0, np.float32)[:, :, 1::2]  # [B, H, D] with stride 2 in D
    out, lse = cpattn.merge_attn_states_varlen(wide[:, :, ::2], lse_t, off_wide[::2], out=given)
    assert out is given
    check(out, lse, outs, lses, offsets)
    assert np.all(given.base[:, :, ::2] == 7.0)  # the elements between were not touched


def test_varlen_zero_sizes_and_list_offsets(rng):
    out, lse = cpattn.merge_attn_states_varlen(np.zeros((0, 2, 4), np.float32), np.zeros((0, 2), np.float32), [0])
    assert out.shape == (0, 2, 4) and lse.shape == (0, 2)
    out, lse = cpattn.merge_attn_states_varlen(np.zeros((0, 2, 4), np.float32), np.zeros((0, 2), np.float32), [0, 0, 0])
    assert np.all(out == 0) and out.shape == (2, 2, 4) and np.all(lse == -np.inf)  # P = 0: every row empty
    out, lse = cpattn.merge_attn_states_varlen(np.zeros((3, 0, 4), np.float32), np.zeros((3, 0), np.float32), [0, 3])
    assert out.shape == (1, 0, 4) and lse.shape == (1, 0)
    out, lse = cpattn.merge_attn_states_varlen(np.zeros((3, 2, 0), np.float32), np.ones((3, 2), np.float32), [0, 3])
    assert out.shape == (1, 2, 0)
    np.testing.assert_allclose(lse, np.log(3.0) + 1, rtol=1e-6)
    outs, lses, offsets = varlen_batch(rng, [2, 0, 3], 2, 4)
    out, lse = cpattn.merge_attn_states_varlen(outs, lses, [int(v) for v in offsets])
    check(out, lse, outs, lses, offsets)


def test_varlen_return_lse_false(rng):
    outs, lses, offsets = varlen_batch(rng, [3, 0, 2], 2, 8)
    want, _ = cpattn.merge_attn_states_varlen(outs, lses, offsets)
    got = cpattn.merge_attn_states_varlen(outs, lses, offsets, return_lse=False)
    assert isinstance(got, np.ndarray) and np.array_equal(got, want)


def test_varlen_equals_the_fixed_merge_where_every_row_has_n_partials(rng):
    n, b, h, d = 3, 4, 2, 8
    outs = rng.standard_normal((n, b, h, d)).astype(np.float32)
    lses = adversarial_lses(rng, n, b, h)
    want, want_lse = cpattn.merge_attn_states(outs, lses)
    rows = np.ascontiguousarray(outs.transpose(1, 0, 2, 3)).reshape(b * n, h, d)  # row b's partials together
    got, got_lse = cpattn.merge_attn_states_varlen(rows, lses.transpose(1, 0, 2).reshape(b * n, h),
                                                   np.arange(0, b * n + 1, n))
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6)
    np.testing.assert_array_equal(got_lse, want_lse)


def test_merge_and_correct_return_lse_false(rng):
    outs = rng.standard_normal((3, 4, 2, 8)).astype(np.float32)
    lses = adversarial_lses(rng, 3, 4, 2)
    want, _ = cpattn.merge_attn_states(outs, lses)
    got = cpattn.merge_attn_states(outs, lses, return_lse=False)
    assert isinstance(got, np.ndarray) and np.array_equal(got, want)
    part = outs[1].copy()
    ref, _ = cpattn.correct_attn_out(outs[1].copy(), lses, 1)
    res = cpattn.correct_attn_out(part, lses, 1, return_lse=False)
    assert res is part and np.array_equal(res, ref)
    fresh = np.empty_like(part)
    res = cpattn.correct_attn_out(outs[1], lses, 1, new_out=fresh, return_lse=False)
    assert res is fresh and np.array_equal(res, ref)
    res = cpattn.correct_attn_out(outs[1][:, None].copy(), lses[..., None], 1, return_lse=False)  # vLLM's 4-D forms
    assert res.shape == (4, 1, 2, 8) and np.array_equal(res[:, 0], ref)


def z(*shape, dtype=np.float32):
    return np.zeros(shape, dtype)


@pytest.mark.parametrize("call, error, argument", [
    (lambda: cpattn.merge_attn_states_varlen(z(4, 1, 2, 8), z(4, 2), [0, 4]), ValueError, "outs"),
    (lambda: cpattn.merge_attn_states_varlen(z(4, 2, 8, dtype=np.int32), z(4, 2), [0, 4]), ValueError, "outs"),
    (lambda: cpattn.merge_attn_states_varlen(z(4, 2, 8, dtype=np.float64), z(4, 2), [0, 4]), ValueError, "outs"),
    (lambda: cpattn.merge_attn_states_varlen(z(4, 2, 8), z(4, 3), [0, 4]), ValueError, "lses"),
    (lambda: cpattn.merge_attn_states_varlen(z(4, 2, 8), z(5, 2), [0, 4]), ValueError, "lses"),
    (lambda: cpattn.merge_attn_states_varlen(z(4, 2, 8), z(4, 2), np.array([0, 2, 1, 4], np.int32)), ValueError,
     "offsets"),  # decreasing
    (lambda: cpattn.merge_attn_states_varlen(z(4, 2, 8), z(4, 2), np.array([0, 5], np.int64)), ValueError,
     "offsets"),  # past P
    (lambda: cpattn.merge_attn_states_varlen(z(4, 2, 8), z(4, 2), [-1, 2]), ValueError, "offsets"),
    (lambda: cpattn.merge_attn_states_varlen(z(4, 2, 8), z(4, 2), np.array([0.0, 4.0])), ValueError, "offsets"),
    (lambda: cpattn.merge_attn_states_varlen(z(4, 2, 8), z(4, 2), z(2, 2, dtype=np.int32)), ValueError, "offsets"),
    (lambda: cpattn.merge_attn_states_varlen(z(4, 2, 8), z(4, 2), z(0, dtype=np.int32)), ValueError, "offsets"),
    (lambda: cpattn.merge_attn_states_varlen(z(4, 2, 8), z(4, 2), object()), TypeError, "offsets"),
    (lambda: cpattn.merge_attn_states_varlen(z(4, 2, 8), z(4, 2), [0, 4], out=z(2, 2, 8)), ValueError, "out"),
    (lambda: cpattn.merge_attn_states_varlen(z(4, 2, 8), z(4, 2), [0, 4],
                                             out=np.broadcast_to(np.float32(0), (1, 2, 8))), ValueError, "out"),
    (lambda: cpattn.merge_attn_states_varlen(z(4, 2, 8), z(4, 2), [0, 4], out_scale=np.ones(1, np.float32)), TypeError,
     "out_scale"),  # numpy has no fp8 dtype
    (lambda: cpattn.merge_attn_states(z(2, 3, 4, 8), z(2, 3, 4), out_scale=np.ones(1, np.float32)), TypeError,
     "out_scale"),
    (lambda: cpattn.merge_attn_states(z(2, 3, 4, 8), z(2, 3, 4), out=z(3, 4, 8, dtype=np.uint8),
                                      out_scale=np.ones(1, np.float32)), TypeError, "out_scale"),
    (lambda: cpattn.merge_attn_states(z(2, 3, 4, 8), z(2, 3, 4), out=z(3, 4, 8, dtype=np.uint8)), ValueError, "out"),
    (lambda: cpattn.correct_attn_out(z(3, 4, 8), z(2, 3, 4), 2, return_lse=False), ValueError, "rank"),
])
def test_bad_input_names_the_argument(call, error, argument):
    with pytest.raises(error, match=f"^cpattn: invalid {argument}: expected"):
        call()
