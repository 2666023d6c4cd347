"""cpattn from Python on numpy arrays (CPU): merge_attn_states, merge_attn_states_varlen,
correct_attn_out, pack_seq and unpack_seq, each asserted against a float64 numpy reference.

Run, with the build tree or after `pip install .`:
    PYTHONPATH=build/python python3 examples/numpy_merge.py
Needs numpy only. Prints what it checked; an AssertionError says what did not match.
"""
import numpy as np

import cpattn


def merge_reference(outs, lses):
    """float64 merge of N partials: sanitize (NaN, +inf -> -inf), weights exp(lse_r - lse)."""
    lses = np.where(np.isnan(lses) | (lses == np.inf), -np.inf, lses.astype(np.float64))
    m = lses.max(axis=0)
    finite = np.isfinite(m)
    safe_m = np.where(finite, m, 0.0)
    total = np.where(finite, np.exp(lses - safe_m).sum(axis=0), 1.0)
    lse = np.where(finite, safe_m + np.log(total), -np.inf)
    w = np.where(finite, np.exp(lses - np.where(finite, lse, 0.0)), 0.0)  # [N, B, H]
    # a partial of weight 0 adds exact zeros, whatever its output holds
    terms = np.where(w[..., None] > 0, w[..., None] * outs.astype(np.float64), 0.0)
    return terms.sum(axis=0), lse, w


def main():
    rng = np.random.default_rng(0)
    N, B, H, D = 3, 4, 8, 96  # any N >= 1, any head dim
    outs = rng.standard_normal((N, B, H, D), dtype=np.float32)
    lses = rng.standard_normal((N, B, H), dtype=np.float32)
    lses[:, 0] = -np.inf  # row 0: every shard empty
    lses[2, 1] = -np.inf  # row 1, partial 2: an empty shard ...
    outs[2, 1] = np.nan  # ... whose output holds NaN

    # merge_attn_states: outs [N, B, H, D], lses [N, B, H] -> out [B, H, D], lse [B, H]
    out, lse = cpattn.merge_attn_states(outs, lses)
    ref_out, ref_lse, w = merge_reference(outs, lses)
    assert np.all(lse[0] == -np.inf) and np.all(out[0] == 0)  # -inf and 0, not NaN
    np.testing.assert_allclose(out, ref_out, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(lse, ref_lse, rtol=1e-6, atol=1e-6)
    print(f"merge_attn_states: out {out.shape} lse {lse.shape}, max |out - f64| = {np.abs(out - ref_out).max():.1e}")

    # LSEs in log2 units (FlashInfer's): the same merge
    out2, lse2 = cpattn.merge_attn_states(outs, lses / np.float32(np.log(2)), is_lse_base_on_e=False)
    np.testing.assert_allclose(out2, ref_out, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(lse2[1:], ref_lse[1:] / np.log(2), rtol=1e-5, atol=1e-5)

    # kv_lens [N, B]: a partial whose row has 0 keys is empty whatever its lse holds
    kv_lens = np.full((N, B), 5, dtype=np.int32)
    kv_lens[1, 3] = 0
    out_kv, _ = cpattn.merge_attn_states(outs, lses, kv_lens=kv_lens)
    masked = lses.copy()
    masked[1, 3] = -np.inf
    np.testing.assert_allclose(out_kv, merge_reference(outs, masked)[0], rtol=1e-5, atol=1e-5)

    # merge_attn_states_varlen (split-KV decode): row b's partials are offsets[b] .. offsets[b+1]
    # of outs [P, H, D] and lses [P, H]; a row may have none (lse -inf, out 0)
    counts = [2, 0, 3, 1]  # partials per row: B = 4 rows, P = 6 partials
    offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int32)
    flat_outs = rng.standard_normal((6, H, D), dtype=np.float32)
    flat_lses = rng.standard_normal((6, H), dtype=np.float32)
    out_v, lse_v = cpattn.merge_attn_states_varlen(flat_outs, flat_lses, offsets)
    for b in range(len(counts)):  # each row with partials: the fixed-N merge of its own
        first, last = offsets[b], offsets[b + 1]
        if first == last:
            continue
        want_out, want_lse, _ = merge_reference(flat_outs[first:last, None], flat_lses[first:last, None])
        np.testing.assert_allclose(out_v[b], want_out[0], rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(lse_v[b], want_lse[0], rtol=1e-6, atol=1e-6)
    assert np.all(lse_v[1] == -np.inf) and not out_v[1].any()
    print(f"merge_attn_states_varlen: {len(counts)} rows of {counts} partials match f64")

    # correct_attn_out: scale this rank's partial by its weight, in place; returns (out, lse)
    mine = outs[1].copy()  # rank 1's partial [B, H, D]
    corrected, lse_c = cpattn.correct_attn_out(mine, lses, 1)
    assert corrected is mine  # vLLM's behaviour: in place
    np.testing.assert_allclose(mine, w[1][..., None] * outs[1].astype(np.float64), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(lse_c, ref_lse, rtol=1e-6, atol=1e-6)
    # or into a separate output, leaving the partial as it was
    fresh = np.empty_like(outs[0])
    cpattn.correct_attn_out(outs[0], lses, 0, new_out=fresh)
    np.testing.assert_allclose(fresh, w[0][..., None] * outs[0].astype(np.float64), rtol=1e-5, atol=1e-6)
    print("correct_attn_out: in place and into new_out match f64")

    # pack_seq / unpack_seq: a padded token batch, T = 10 rows of which sum(lengths) = 8 are tokens
    x = rng.standard_normal((10, 2, 32), dtype=np.float32)  # [T, heads, dim]: trailing dims are kept
    lengths = np.array([3, 1, 4], dtype=np.int64)
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    packed = cpattn.pack_seq(x, lengths, pad_value=0.0)  # [3, 4, 2, 32]: L = max(lengths), a host read
    want = np.zeros((3, 4, 2, 32), np.float32)
    for b, (s, n) in enumerate(zip(starts, lengths)):
        want[b, :n] = x[s:s + n]  # rows 8 and 9 of x are never read
    assert np.array_equal(packed, want)

    back = cpattn.unpack_seq(packed, lengths)  # [8, 2, 32]: T = sum(lengths)
    assert np.array_equal(back, x[:8])
    back = cpattn.unpack_seq(packed, lengths, total=10)  # [10, 2, 32]: rows past the sum are zero
    assert np.array_equal(back[:8], x[:8]) and not back[8:].any()
    given = np.full_like(x, 7.0)
    cpattn.unpack_seq(packed, lengths, total=10, out=given)  # a given out keeps rows 8 and 9
    assert np.array_equal(given[:8], x[:8]) and np.all(given[8:] == 7.0)

    # max_len: L fixed by the caller (no host read); longer sequences are truncated
    short = cpattn.pack_seq(x, lengths, pad_value=-1.0, max_len=2)  # [3, 2, 2, 32]
    assert np.array_equal(short[2], x[4:6]) and np.all(short[1, 1] == -1.0)
    # unpack needs every length <= L: unpack the truncated batch with lengths clipped to L
    clipped = np.minimum(lengths, 2)
    assert np.array_equal(cpattn.unpack_seq(short, clipped), np.concatenate([x[0:2], x[3:4], x[4:6]]))

    # cu_seqlens (B + 1 offsets) instead of lengths; any element size (here uint8 and pad 0)
    cu = np.array([0, 3, 4, 8], dtype=np.int32)
    codes = rng.integers(0, 255, (8, 16), dtype=np.uint8)
    packed_u8 = cpattn.pack_seq(codes, cu_seqlens=cu, pad_value=0, max_len=4)
    assert np.array_equal(cpattn.unpack_seq(packed_u8, cu_seqlens=cu, total=8), codes)
    print("pack_seq / unpack_seq: padded batch, total, out, max_len, cu_seqlens and uint8 exact")

    # bad input: ValueError naming the argument, what was expected and what came
    try:
        cpattn.merge_attn_states(outs, lses[:, :, :5])
        raise AssertionError("expected a ValueError")
    except ValueError as e:
        assert "lses" in str(e)
        print(f"bad input: {e}")
    print("numpy_merge: every result matches the float64 reference")


if __name__ == "__main__":
    main()
