"""Every way vLLM's callers use the drop-in names (``vllm.attention.ops.common``): the
positional and keyword forms, the 4-D layouts, CPTritonContext or None, int64 lengths from
``torch.tensor(list)``, fp8 and uint8 tokens, and a padded token batch. Runs with torch on
the CPU, and on CUDA where a GPU is present."""
import math

import pytest

torch = pytest.importorskip("torch", reason="torch is not installed (CI installs numpy only)")
import cpattn  # noqa: E402

DEVICES = ["cpu", pytest.param("cuda", marks=pytest.mark.gpu)]


def reference_correct(out, lses, rank, base_e=True):
    lse = lses.double().clone()
    lse[torch.isnan(lse) | (lse == math.inf)] = -math.inf
    if not base_e:
        lse = lse * math.log(2.0)
    top = lse.max(0).values
    safe = torch.where(torch.isfinite(top), top, torch.zeros_like(top))
    total = torch.log(torch.exp(lse - safe).sum(0)) + safe
    weight = torch.nan_to_num(torch.exp(lse[rank] - total), nan=0.0)
    return out.double() * weight[..., None], total if base_e else total / math.log(2.0)


class VllmStyleGroup:
    """What vLLM's GroupCoordinator offers cp_lse_ag_out_rs: size 1 here, which returns the
    input untouched (the multi-rank forms run under test_torch's gloo and the device runs)."""
    world_size = 1
    rank_in_group = 0

    def all_gather(self, t, dim=0):
        return t

    def reduce_scatter(self, t, dim=0):
        return t


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("ctx", [None, "context"])
def test_correct_attn_out_positional_ctx(device, ctx):
    g = torch.Generator().manual_seed(1)
    out = torch.randn(5, 4, 16, generator=g).to(device, torch.bfloat16)
    lses = (torch.randn(3, 5, 4, generator=g) * 3).to(device)
    expected, expected_lse = reference_correct(out, lses, 1)
    result, lse = cpattn.correct_attn_out(out, lses, 1, cpattn.CPTritonContext() if ctx else None)
    assert result is out
    torch.testing.assert_close(result.double(), expected, rtol=8e-3, atol=8e-3)
    torch.testing.assert_close(lse.double(), expected_lse, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("device", DEVICES)
def test_correct_attn_out_base_2_and_4d_layouts(device):
    g = torch.Generator().manual_seed(2)
    out = torch.randn(3, 1, 4, 8, generator=g).to(device)  # [B, 1, H, D]
    lses = (torch.randn(2, 3, 4, 1, generator=g) * 3).to(device)  # [N, B, H, 1]
    expected, expected_lse = reference_correct(out[:, 0], lses[..., 0], 0, base_e=False)
    result, lse = cpattn.correct_attn_out(out, lses, 0, None, is_lse_base_on_e=False)
    assert result.shape == (3, 1, 4, 8)
    torch.testing.assert_close(result[:, 0].double(), expected, rtol=2e-5, atol=2e-5)
    torch.testing.assert_close(lse.double(), expected_lse, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("device", DEVICES)
def test_cp_lse_ag_out_rs_return_lse_world_size_1(device):
    out = torch.randn(2, 4, 8, device=device)
    lse = torch.randn(2, 4, device=device)
    assert cpattn.cp_lse_ag_out_rs(out, lse, VllmStyleGroup()) is out
    result, result_lse = cpattn.cp_lse_ag_out_rs(out, lse, VllmStyleGroup(), None, return_lse=True)
    assert result is out and result_lse is lse


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", ["float8_e4m3fn", "uint8", "bfloat16"])
def test_pack_seq_triton_positional_int64_lengths(device, dtype):
    dtype = getattr(torch, dtype)
    x = (torch.randn(9, 4, 8) * 4).to(dtype).to(device) if dtype != torch.uint8 else \
        torch.randint(0, 255, (9, 4, 8), dtype=torch.uint8).to(device)
    lengths = torch.tensor([3, 1, 5], device=device)  # int64, as torch.tensor(list) gives
    pad = 0.0 if dtype == torch.uint8 else -math.inf
    packed = cpattn.pack_seq_triton(x, lengths, pad, 32, 128)  # vLLM's positional form
    assert packed.shape == (3, 5, 4, 8) and packed.dtype == dtype
    assert torch.equal(packed[2].view(torch.uint8), x[4:9].view(torch.uint8))
    back = cpattn.unpack_seq_triton(packed, lengths, 64, 64)
    assert torch.equal(back.view(torch.uint8), x.view(torch.uint8))


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("cu", [False, True])
def test_padded_token_batch(device, cu):
    """An engine pads its token batch (CUDA graphs): sum(lengths) < T. The padding rows
    hold NaN and must never reach the output."""
    x = torch.randn(20, 4, 8, device=device).to(torch.float8_e4m3fn)
    x[3:] = float("nan")
    lengths = torch.tensor([1, 1, 1], device=device)
    args = dict(cu_seqlens=torch.tensor([0, 1, 2, 3], device=device)) if cu else dict(lengths=lengths)
    packed = cpattn.pack_seq(x, **args)
    assert packed.shape == (3, 1, 4, 8)
    assert not torch.isnan(packed.float()).any()
    assert torch.equal(cpattn.unpack_seq(packed, **args).view(torch.uint8), x[:3].view(torch.uint8))
    if not cu:
        assert cpattn.pack_seq_triton(x, lengths).shape == (3, 1, 4, 8)
        assert cpattn.unpack_seq_triton(cpattn.pack_seq_triton(x, lengths), lengths).shape == (3, 4, 8)
    fresh = cpattn.unpack_seq(packed, total=20, **args)
    assert fresh.shape == (20, 4, 8) and torch.all(fresh[3:].float() == 0)
    with pytest.raises(ValueError, match="summing to at most T = 2"):
        cpattn.pack_seq(x[:2], **args)


@pytest.mark.parametrize("device", DEVICES)
def test_unpack_batch_mismatch_names_lengths(device):
    packed = torch.zeros(3, 2, 4, device=device)
    with pytest.raises(ValueError, match=r"invalid packed: expected size 2 \(B, from lengths\)"):
        cpattn.unpack_seq(packed, torch.tensor([1, 1], device=device))
    with pytest.raises(ValueError, match=r"invalid packed: expected size 2 \(B, from cu_seqlens\)"):
        cpattn.unpack_seq(packed, cu_seqlens=torch.tensor([0, 1, 2], device=device))
