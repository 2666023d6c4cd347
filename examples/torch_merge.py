"""cpattn on torch tensors: merge_attn_states, correct_attn_out, pack_seq / unpack_seq with no
host sync, a CUDA graph that captures them, and torch.compile over torch.ops.cpattn. Each
result is checked against a float64 reference; an AssertionError says what did not match.

Run, with the build tree or after `pip install .`:
    PYTHONPATH=build/python python3 examples/torch_merge.py
On a GPU (cuda:0) it runs everything; without one it runs the same ops on CPU tensors and
skips the CUDA graph part (torch.compile on the CPU needs a C++ compiler for inductor).
"""
import torch

import cpattn


def merged_f64(outs, lses):
    """float64 merge of N partials [N, B, H, D] with LSEs [N, B, H]."""
    lse = torch.logsumexp(lses.double(), dim=0)
    return (torch.exp(lses.double() - lse)[..., None] * outs.double()).sum(0), lse


def main():
    cuda = torch.cuda.is_available()
    device = "cuda" if cuda else "cpu"
    torch.manual_seed(0)

    N, B, H, D = 4, 16, 32, 128
    outs = torch.randn(N, B, H, D, device=device, dtype=torch.bfloat16)
    lses = torch.randn(N, B, H, device=device)

    out, lse = cpattn.merge_attn_states(outs, lses)       # runs on torch's current stream
    part = outs[2].clone()
    part, lse = cpattn.correct_attn_out(part, lses, 2)   # in place
    out, lse = cpattn.merge_attn_states(outs, lses, enable_pdl=True)   # sm_90+: dependent launch

    want, want_lse = merged_f64(outs, lses)
    assert (out.double() - want).abs().max() <= 2 ** -8 * want.abs().max()  # one bf16 rounding
    assert torch.allclose(lse.double(), want_lse, atol=1e-5)
    want_part = torch.exp(lses[2].double() - want_lse)[..., None] * outs[2].double()
    assert (part.double() - want_part).abs().max() <= 2 ** -8 * want_part.abs().max()
    print(f"merge_attn_states, correct_attn_out on {device}: match f64")

    # with max_len and total given, pack/unpack never synchronise with the host
    x = torch.randn(10, 8, 64, device=device, dtype=torch.bfloat16)   # T = 10 tokens, 8 heads
    lengths = torch.tensor([3, 1, 4], device=device)                  # sum 8 <= T
    packed = cpattn.pack_seq(x, lengths, pad_value=0.0, max_len=4)   # [3, 4, 8, 64]
    back = cpattn.unpack_seq(packed, lengths, total=10)              # [10, 8, 64], rows 8-9 zero
    assert packed.shape == (3, 4, 8, 64) and torch.equal(packed[2], x[4:8]) and not packed[1, 1:].any()
    assert torch.equal(back[:8], x[:8]) and not back[8:].any()
    print(f"pack_seq / unpack_seq on {device}: exact")

    # torch.compile: the ops are also torch.ops.cpattn.* custom ops
    @torch.compile(fullgraph=True)
    def merge(outs, lses):
        out, lse = torch.ops.cpattn.merge_attn_states(outs, lses, True)
        return out.float().sum(-1), lse

    summed, _ = merge(outs, lses)
    want, _ = merged_f64(outs, lses)
    assert torch.allclose(summed.double(), want.sum(-1), rtol=2e-2, atol=0.5)
    print("torch.compile over torch.ops.cpattn.merge_attn_states: matches f64")

    if not cuda:
        print("torch_merge: no GPU: the CUDA graph part is skipped; the rest matches the float64 reference")
        return

    # CUDA graphs: capture as usual, replay with new inputs in the same tensors
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        merged, merged_lse = cpattn.merge_attn_states(outs, lses)
        packed = cpattn.pack_seq(x, lengths, 0.0, max_len=4)
    outs.copy_(torch.randn_like(outs))
    graph.replay()
    torch.cuda.synchronize()
    want, _ = merged_f64(outs, lses)
    assert (merged.double() - want).abs().max() <= 2 ** -8 * want.abs().max()
    print("CUDA graph replay with new inputs: matches f64")
    print("torch_merge: every result matches the float64 reference")


if __name__ == "__main__":
    main()
