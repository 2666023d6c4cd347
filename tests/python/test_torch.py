"""torch-specific behaviour: CUDA tensors on the current stream, requires_grad inputs,
torch.ops.cpattn.* (opcheck, torch.compile), CUDA-graph capture, torch.distributed gloo.
Skipped, with the reason, where torch (or a GPU) is absent."""
import os

import pytest

torch = pytest.importorskip("torch", reason="torch is not installed (CI installs numpy only)")
import cpattn  # noqa: E402


def ref_correct(out, lses, rank):
    l = lses.double().clone()
    l[torch.isnan(l) | (l == float("inf"))] = float("-inf")
    m = l.max(0).values
    m_safe = torch.where(torch.isfinite(m), m, torch.zeros_like(m))
    g = torch.log(torch.exp(l - m_safe).sum(0)) + m_safe
    f = torch.exp(l[rank] - g)
    f = torch.where(torch.isnan(f), torch.zeros_like(f), f)
    return out.double() * f[..., None], g


@pytest.mark.parametrize("device", ["cpu", pytest.param("cuda", marks=pytest.mark.gpu)])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float16])
@pytest.mark.parametrize("n,d", [(2, 128), (3, 96), (6, 576), (8, 512)])
def test_correct_matches_reference(device, dtype, n, d):
    g = torch.Generator().manual_seed(n * d)
    out = torch.randn(16, 8, d, generator=g).to(device, dtype)
    lses = (torch.randn(n, 16, 8, generator=g) * 4).to(device)
    lses[0, 0] = float("nan")
    ref_o, ref_l = ref_correct(out, lses, n - 1)
    res, lse = cpattn.correct_attn_out(out, lses, n - 1, cpattn.CPTritonContext())
    assert res is out
    tol = {torch.float32: 2e-5, torch.bfloat16: 8e-3, torch.float16: 2e-3}[dtype]
    torch.testing.assert_close(res.double(), ref_o, rtol=tol, atol=tol)
    torch.testing.assert_close(lse.double(), ref_l, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("device", ["cpu", pytest.param("cuda", marks=pytest.mark.gpu)])
def test_requires_grad_inputs_do_not_crash(device):
    out = torch.randn(4, 2, 8, device=device, requires_grad=True)
    lses = torch.randn(3, 4, 2, device=device, requires_grad=True)
    merged, lse = cpattn.merge_attn_states(out[None].expand(3, -1, -1, -1), lses)
    assert merged.shape == (4, 2, 8) and not merged.requires_grad


def test_unsupported_tensor_device_and_dtype_raise_type_error():
    lses = torch.zeros(2, 3, 4)
    with pytest.raises(TypeError, match="out: expected a CPU or CUDA tensor"):
        cpattn.correct_attn_out(torch.empty(3, 4, 8, device="meta"), lses, 0)
    with pytest.raises(TypeError, match="out: expected a tensor of dtype"):
        cpattn.correct_attn_out(torch.zeros(3, 4, 8, dtype=torch.complex64), lses, 0)


@pytest.mark.parametrize("device", ["cpu", pytest.param("cuda", marks=pytest.mark.gpu)])
def test_pack_unpack(device):
    lengths = torch.tensor([3, 0, 5, 1], device=device)
    x = torch.randn(9, 4, 8, device=device, dtype=torch.bfloat16)
    packed = cpattn.pack_seq_triton(x, lengths)
    assert packed.shape == (4, 5, 4, 8) and torch.isinf(packed[1]).all()
    torch.testing.assert_close(cpattn.unpack_seq_triton(packed, lengths), x, rtol=0, atol=0)


@pytest.mark.parametrize("device", ["cpu", pytest.param("cuda", marks=pytest.mark.gpu)])
def test_opcheck(device):
    out = torch.randn(4, 2, 16, device=device)
    lses = torch.randn(3, 4, 2, device=device)
    torch.library.opcheck(torch.ops.cpattn.correct_attn_out.default, (out, lses, 1, True))
    torch.library.opcheck(torch.ops.cpattn.merge_attn_states.default, (torch.randn(3, 4, 2, 16, device=device), lses, True))
    lengths = torch.tensor([2, 1], device=device)
    torch.library.opcheck(torch.ops.cpattn.pack_seq.default, (torch.randn(3, 5, device=device), lengths, 0.0, 2))
    torch.library.opcheck(torch.ops.cpattn.unpack_seq.default, (torch.randn(2, 2, 5, device=device), lengths, 3))


@pytest.mark.parametrize("device", ["cpu", pytest.param("cuda", marks=pytest.mark.gpu)])
def test_torch_compile_fullgraph_matches_eager(device):
    def f(outs, lses):
        merged, lse = torch.ops.cpattn.merge_attn_states(outs, lses, True)
        return merged * 2, lse + 1

    outs, lses = torch.randn(3, 4, 2, 16, device=device), torch.randn(3, 4, 2, device=device)
    eager = f(outs, lses)
    compiled = torch.compile(f, fullgraph=True)(outs, lses)
    torch.testing.assert_close(compiled, eager)


@pytest.mark.gpu
def test_cuda_graph_capture_replay_with_new_inputs():
    outs = torch.randn(4, 8, 16, 128, device="cuda", dtype=torch.bfloat16)
    lses = torch.randn(4, 8, 16, device="cuda")
    part = torch.randn(8, 16, 128, device="cuda", dtype=torch.bfloat16)
    x = torch.randn(7, 64, device="cuda")
    lengths = torch.tensor([3, 0, 4], device="cuda")
    s = torch.cuda.Stream()
    s.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(s):  # warm up: workspaces exist before capture
        cpattn.pack_seq(x, lengths, 0.0, max_len=4)
        cpattn.unpack_seq(cpattn.pack_seq(x, lengths, 0.0, max_len=4), lengths, total=7)
    torch.cuda.current_stream().wait_stream(s)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        merged, lse = cpattn.merge_attn_states(outs, lses)
        corrected, clse = cpattn.correct_attn_out(part, lses, 2, new_out=torch.empty_like(part))
        packed = cpattn.pack_seq(x, lengths, 0.0, max_len=4)
        back = cpattn.unpack_seq(packed, lengths, total=7)
    for _ in range(2):
        outs.copy_(torch.randn_like(outs))
        lses.copy_(torch.randn_like(lses))
        part.copy_(torch.randn_like(part))
        x.copy_(torch.randn_like(x))
        graph.replay()
        torch.cuda.synchronize()
        ref_m, _ = cpattn.merge_attn_states(outs, lses)
        torch.testing.assert_close(merged, ref_m, rtol=0, atol=0)
        ref_c, _ = ref_correct(part, lses, 2)
        torch.testing.assert_close(corrected.double(), ref_c, rtol=8e-3, atol=8e-3)
        torch.testing.assert_close(back, x, rtol=0, atol=0)


@pytest.mark.parametrize("device", ["cpu", pytest.param("cuda", marks=pytest.mark.gpu)])
def test_enable_pdl_gives_the_same_bits(device):
    """A merge -> correct chain, the second reading the first's output: with programmatic
    dependent launches (a no-op on CPU and before sm_90) eagerly and in a CUDA graph, bit for
    bit what ordinary launches give."""
    g = torch.Generator().manual_seed(5)
    outs = torch.randn(8, 512, 32, 128, generator=g).to(device, torch.bfloat16)
    lses = (torch.randn(8, 512, 32, generator=g) * 3).to(device)

    def chain(pdl):
        merged, lse = cpattn.merge_attn_states(outs, lses, enable_pdl=pdl)
        both = torch.stack([lse, lses[0]])
        return cpattn.correct_attn_out(merged, both, 0, enable_pdl=pdl)

    want, want_lse = chain(False)
    got, got_lse = chain(True)
    torch.testing.assert_close(got, want, rtol=0, atol=0)
    torch.testing.assert_close(got_lse, want_lse, rtol=0, atol=0)
    if device == "cuda":
        s = torch.cuda.Stream()
        s.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(s):
            chain(True)
        torch.cuda.current_stream().wait_stream(s)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            replayed, replayed_lse = chain(True)
        graph.replay()
        torch.cuda.synchronize()
        torch.testing.assert_close(replayed, want, rtol=0, atol=0)
        torch.testing.assert_close(replayed_lse, want_lse, rtol=0, atol=0)


def _gloo_rank(rank, world, port, results):
    import torch.distributed as dist
    dist.init_process_group("gloo", rank=rank, world_size=world, init_method=f"tcp://127.0.0.1:{port}")
    g = torch.Generator().manual_seed(0)
    outs = torch.randn(world, 3, 2 * world, 16, generator=g)
    lses = torch.randn(world, 3, 2 * world, generator=g)
    res = cpattn.cp_lse_ag_out_rs(outs[rank].clone(), lses[rank].clone(), dist.group.WORLD)
    ref, _ = cpattn.merge_attn_states(outs, lses)
    hn = 2
    ok = torch.allclose(res, ref[:, rank * hn:(rank + 1) * hn], rtol=1e-5, atol=1e-5)
    results.put((rank, ok))
    dist.destroy_process_group()


@pytest.mark.parametrize("world", [2, 4])
def test_torch_distributed_gloo(world):
    import torch.multiprocessing as mp
    ctx = mp.get_context("spawn")
    results = ctx.Queue()
    port = 29500 + world + os.getpid() % 1000
    procs = [ctx.Process(target=_gloo_rank, args=(r, world, port, results)) for r in range(world)]
    [p.start() for p in procs]
    [p.join(120) for p in procs]
    got = dict(results.get(timeout=10) for _ in range(world))
    assert all(got[r] for r in range(world)), got
