"""torch tensors through merge_attn_states_varlen, the fp8 e4m3 output (out_scale) and
return_lse: against the float64 reference on CPU (and CUDA where a GPU is present), the
custom ops under opcheck and torch.compile(fullgraph=True), CUDA-graph capture."""
import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="torch is not installed (CI installs numpy only)")
import cpattn  # noqa: E402
from conftest import reference_merge  # noqa: E402
from test_ops import adversarial_lses  # noqa: E402
from test_varlen import reference_varlen, varlen_batch  # noqa: E402

DEVICES = ["cpu", pytest.param("cuda", marks=pytest.mark.gpu)]
FP8_MAX = 448.0
FP8_RTOL, FP8_ATOL = 2.0 ** -4, 2.0 ** -10  # one e4m3 rounding: half of 2^-3 relative, half the 2^-9 subnormal step


def as_torch(a, device, dtype=None):
    t = torch.from_numpy(np.ascontiguousarray(a)).to(device)
    return t if dtype is None else t.to(dtype)


def check_fp8(out, ref, scale):
    """out: fp8 e4m3; ref: the float64 merge. |ref / scale| >= 448 saturates to exactly
    +-448; the rest is within one e4m3 rounding."""
    assert out.dtype == torch.float8_e4m3fn
    got = out.float().cpu().double().numpy()
    want = ref / scale
    over = np.abs(want) >= FP8_MAX
    np.testing.assert_array_equal(got[over], np.sign(want[over]) * FP8_MAX)
    np.testing.assert_allclose(got[~over], want[~over], rtol=FP8_RTOL, atol=FP8_ATOL)
    return over


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("offsets_dtype", [torch.int32, torch.int64])
def test_varlen_matches_float64(rng, device, dtype, offsets_dtype):
    outs, lses, offsets = varlen_batch(rng, [2, 0, 5, 1, 16, 0, 3], 4, 128)
    o = as_torch(outs, device, dtype)
    out, lse = cpattn.merge_attn_states_varlen(o, as_torch(lses, device), as_torch(offsets, device, offsets_dtype))
    assert out.device == o.device and out.dtype == dtype and lse.dtype == torch.float32
    ref_out, ref_lse = reference_varlen(o.float().cpu().double().numpy(), lses, offsets)
    tol = 2e-5 if dtype == torch.float32 else 8e-3
    np.testing.assert_allclose(out.double().cpu().numpy(), ref_out, rtol=tol, atol=tol)
    np.testing.assert_allclose(lse.cpu().numpy(), ref_lse, rtol=1e-5, atol=1e-5)
    assert torch.all(out[1] == 0) and torch.all(lse[5] == float("-inf"))


@pytest.mark.parametrize("device", DEVICES)
def test_varlen_strided_views(rng, device):
    outs, lses, offsets = varlen_batch(rng, [4, 0, 1, 9], 3, 64)
    wide = torch.full((outs.shape[0], 3, 128), float("nan"), device=device)
    wide[:, :, 1::2] = as_torch(outs, device)  # D stride 2
    lse_t = as_torch(lses.T, device).t()  # [P, H], column-major
    off_wide = torch.zeros(2 * len(offsets), dtype=torch.int64, device=device)
    off_wide[::2] = as_torch(offsets, device)
    given = torch.full((3, 4, 64), 7.0, device=device).transpose(0, 1)  # [B, H, D] with B, H swapped in memory
    out, lse = cpattn.merge_attn_states_varlen(wide[:, :, 1::2], lse_t, off_wide[::2], out=given)
    assert out is given and not lse_t.is_contiguous()
    ref_out, ref_lse = reference_varlen(outs, lses, offsets)
    np.testing.assert_allclose(given.cpu().double().numpy(), ref_out, rtol=2e-5, atol=2e-5)
    np.testing.assert_allclose(lse.cpu().numpy(), ref_lse, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("varlen", [False, True])
@pytest.mark.parametrize("saturate", [False, True])
def test_fp8_output_rounds_once_and_saturates(rng, device, varlen, saturate):
    if varlen:
        outs, lses, offsets = varlen_batch(rng, [3, 0, 1, 6], 4, 64)
        ref, _ = reference_varlen(outs, lses, offsets)
    else:
        outs = rng.standard_normal((3, 5, 4, 64)).astype(np.float32)
        lses = adversarial_lses(rng, 3, 5, 4)
        outs[np.broadcast_to(np.isneginf(lses)[..., None], outs.shape)] = np.nan
        ref, _, _ = reference_merge(outs, lses)
    top = np.abs(ref).max()
    scale = top / 1000 if saturate else top / 300  # saturate: every |ref| past 0.448 * top clips
    args = (as_torch(outs, device), as_torch(lses, device)) + ((as_torch(offsets, device),) if varlen else ())
    fn = cpattn.merge_attn_states_varlen if varlen else cpattn.merge_attn_states
    out, lse = fn(*args, out_scale=torch.tensor([scale], dtype=torch.float32, device=device))
    assert out.shape == ref.shape and lse.dtype == torch.float32
    over = check_fp8(out, ref, np.float64(np.float32(scale)))
    assert over.any() == saturate
    assert torch.all(out.float()[0 if not varlen else 1] == 0)  # row 0 (fixed) / row 1 (varlen) has no partial


@pytest.mark.parametrize("device", DEVICES)
def test_fp8_into_a_given_strided_out_without_lse(rng, device):
    outs = rng.standard_normal((2, 3, 4, 16)).astype(np.float32)
    lses = adversarial_lses(rng, 2, 3, 4)
    outs[np.broadcast_to(np.isneginf(lses)[..., None], outs.shape)] = np.nan
    ref, _, _ = reference_merge(outs, lses)
    base = torch.full((3, 4, 32), 1.0, device=device).to(torch.float8_e4m3fn)
    given = base[:, :, ::2]
    res = cpattn.merge_attn_states(as_torch(outs, device), as_torch(lses, device), out=given,
                                   out_scale=torch.full((1,), 0.5, device=device), return_lse=False)
    assert res is given
    check_fp8(given, ref, 0.5)
    assert torch.all(base[:, :, 1::2].float() == 1.0)


@pytest.mark.parametrize("device", DEVICES)
def test_return_lse_false(device):
    g = torch.Generator().manual_seed(3)
    out = torch.randn(6, 4, 32, generator=g).to(device, torch.bfloat16)
    lses = (torch.randn(3, 6, 4, generator=g) * 3).to(device)
    want, _ = cpattn.correct_attn_out(out.clone(), lses, 2)
    part = out.clone()
    got = cpattn.correct_attn_out(part, lses, 2, return_lse=False)
    assert got is part and torch.equal(got, want)
    fresh = torch.empty_like(out)
    got = cpattn.correct_attn_out(out, lses, 2, new_out=fresh, return_lse=False)
    assert got is fresh and torch.equal(got, want)
    outs = torch.randn(3, 6, 4, 32, generator=g).to(device)
    merged = cpattn.merge_attn_states(outs, lses, return_lse=False)
    assert isinstance(merged, torch.Tensor) and torch.equal(merged, cpattn.merge_attn_states(outs, lses)[0])
    offsets = torch.tensor([0, 2, 2, 3, 3, 3, 3], device=device)
    got = cpattn.merge_attn_states_varlen(outs[:, 0], lses[:, 0], offsets, return_lse=False)
    want, _ = cpattn.merge_attn_states_varlen(outs[:, 0], lses[:, 0], offsets)
    assert got.shape == (6, 4, 32) and torch.equal(got, want)


@pytest.mark.parametrize("call, error, argument", [
    (lambda: cpattn.merge_attn_states(torch.zeros(2, 3, 4, 8), torch.zeros(2, 3, 4), out=torch.zeros(3, 4, 8),
                                      out_scale=torch.ones(1)), ValueError, "out_scale"),  # f32 out
    (lambda: cpattn.merge_attn_states(torch.zeros(2, 3, 4, 8), torch.zeros(2, 3, 4),
                                      out=torch.zeros(3, 4, 8, dtype=torch.float8_e4m3fn)), ValueError, "out_scale"),
    (lambda: cpattn.merge_attn_states(torch.zeros(2, 3, 4, 8), torch.zeros(2, 3, 4), out_scale=torch.ones(2)),
     ValueError, "out_scale"),
    (lambda: cpattn.merge_attn_states(torch.zeros(2, 3, 4, 8), torch.zeros(2, 3, 4),
                                      out_scale=torch.ones(1, dtype=torch.float16)), ValueError, "out_scale"),
    (lambda: cpattn.merge_attn_states(torch.zeros(2, 3, 4, 8), torch.zeros(2, 3, 4), out_scale=0.5), TypeError,
     "out_scale"),
    (lambda: cpattn.merge_attn_states(torch.zeros(2, 3, 4, 8), torch.zeros(2, 3, 4),
                                      out=torch.zeros(3, 4, 8, dtype=torch.float8_e5m2), out_scale=torch.ones(1)),
     ValueError, "out"),
    (lambda: cpattn.merge_attn_states_varlen(torch.zeros(4, 2, 8), torch.zeros(4, 2), torch.tensor([0, 4]),
                                             out=torch.zeros(1, 2, 8, dtype=torch.float8_e4m3fn)),
     ValueError, "out_scale"),
    (lambda: cpattn.merge_attn_states_varlen(torch.zeros(4, 2, 8), torch.zeros(4, 2), torch.tensor([0, 3, 2])),
     ValueError, "offsets"),
    (lambda: cpattn.merge_attn_states_varlen(torch.zeros(4, 2, 8), torch.zeros(4, 2), torch.tensor([0.0, 4.0])),
     ValueError, "offsets"),
])
def test_bad_input_names_the_argument(call, error, argument):
    with pytest.raises(error, match=f"^cpattn: invalid {argument}: expected"):
        call()


def test_correct_attn_out_takes_no_out_scale():
    with pytest.raises(TypeError, match="out_scale"):
        cpattn.correct_attn_out(torch.zeros(3, 4, 8), torch.zeros(2, 3, 4), 0, out_scale=torch.ones(1))


@pytest.mark.parametrize("device", DEVICES)
def test_opcheck(device):
    outs, lses = torch.randn(7, 2, 16, device=device), torch.randn(7, 2, device=device)
    offsets = torch.tensor([0, 3, 3, 7], device=device, dtype=torch.int32)
    torch.library.opcheck(torch.ops.cpattn.merge_attn_states_varlen.default, (outs, lses, offsets, True, None))
    torch.library.opcheck(torch.ops.cpattn.merge_attn_states_varlen.default, (outs, lses, offsets, False, None))
    torch.library.opcheck(torch.ops.cpattn.merge_attn_states.default,
                          (torch.randn(3, 4, 2, 16, device=device), torch.randn(3, 4, 2, device=device), True, None))


@pytest.mark.parametrize("device", DEVICES)
def test_fake_impls_give_the_real_shapes_and_dtypes(device):
    from torch._subclasses.fake_tensor import FakeTensorMode
    outs, lses = torch.randn(7, 2, 16, device=device), torch.randn(7, 2, device=device)
    offsets, scale = torch.tensor([0, 3, 3, 7], device=device), torch.ones(1, device=device)
    for op, args in [(torch.ops.cpattn.merge_attn_states_varlen, (outs, lses, offsets)),
                     (torch.ops.cpattn.merge_attn_states, (outs[:6].view(3, 2, 2, 16), lses[:6].view(3, 2, 2)))]:
        for s in (None, scale):
            real = op(*args, True, s)
            with FakeTensorMode(allow_non_fake_inputs=True):
                fake = op(*args, True, s)
            assert [(t.shape, t.dtype, t.device) for t in real] == [(t.shape, t.dtype, t.device) for t in fake]


@pytest.mark.parametrize("device", DEVICES)
def test_torch_compile_fullgraph_varlen_matches_eager(device):
    def f(outs, lses, offsets, scale):
        merged, lse = torch.ops.cpattn.merge_attn_states_varlen(outs, lses, offsets, True, None)
        quantised, _ = torch.ops.cpattn.merge_attn_states_varlen(outs, lses, offsets, False, scale)
        return merged * 2, lse + 1, quantised.float()

    g = torch.Generator().manual_seed(4)
    outs, lses = torch.randn(9, 4, 32, generator=g).to(device), torch.randn(9, 4, generator=g).to(device)
    lses[2] = float("nan")
    offsets = torch.tensor([0, 2, 2, 9], device=device)
    scale = torch.full((1,), 0.01, device=device)
    eager = f(outs, lses, offsets, scale)
    compiled = torch.compile(f, fullgraph=True)(outs, lses, offsets, scale)
    torch.testing.assert_close(compiled, eager, rtol=0, atol=0)
    assert torch.all(eager[0][1] == 0) and torch.all(eager[1][1] == float("-inf") + 1)


@pytest.mark.gpu
def test_varlen_cuda_clamps_offsets_on_the_device():
    """CUDA never reads offsets on the host: each row's range is clamped into [0, P] and a
    decreasing pair is an empty row (the CPU raises instead)."""
    outs, lses = torch.randn(4, 2, 8, device="cuda"), torch.randn(4, 2, device="cuda")
    out, lse = cpattn.merge_attn_states_varlen(outs, lses, torch.tensor([0, 5, 2, 100], device="cuda"))
    want, want_lse = cpattn.merge_attn_states_varlen(outs, lses, torch.tensor([0, 4, 4, 4], device="cuda"))
    torch.testing.assert_close(out[0], want[0], rtol=0, atol=0)
    assert torch.all(out[1] == 0) and torch.all(lse[1] == float("-inf"))
    tail, tail_lse = cpattn.merge_attn_states(outs[2:4, None], lses[2:4, None])
    torch.testing.assert_close(out[2], tail[0], rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(lse[2], tail_lse[0], rtol=1e-6, atol=1e-6)


@pytest.mark.gpu
def test_cuda_graph_capture_varlen_and_fp8():
    outs = torch.randn(40, 32, 128, device="cuda", dtype=torch.bfloat16)
    lses = torch.randn(40, 32, device="cuda")
    offsets = torch.tensor([0, 16, 16, 18, 40], device="cuda", dtype=torch.int32)
    scale = torch.full((1,), 0.02, device="cuda")
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        merged, lse = cpattn.merge_attn_states_varlen(outs, lses, offsets)
        quantised = cpattn.merge_attn_states_varlen(outs, lses, offsets, out_scale=scale, return_lse=False)
    for _ in range(2):
        outs.copy_(torch.randn_like(outs))
        lses.copy_(torch.randn_like(lses))
        scale.fill_(float(torch.rand(())) * 0.05 + 0.001)
        graph.replay()
        torch.cuda.synchronize()
        ref, ref_lse = cpattn.merge_attn_states_varlen(outs, lses, offsets)
        torch.testing.assert_close(merged, ref, rtol=0, atol=0)
        torch.testing.assert_close(lse, ref_lse, rtol=0, atol=0)
        ref_q = cpattn.merge_attn_states_varlen(outs, lses, offsets, out_scale=scale, return_lse=False)
        torch.testing.assert_close(quantised.float(), ref_q.float(), rtol=0, atol=0)
