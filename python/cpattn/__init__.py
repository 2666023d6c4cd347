"""cpattn: exact merging of context-parallel attention partials, and sequence packing.

Drop-in for vLLM's ``vllm.attention.ops.common`` (``correct_attn_out``,
``cp_lse_ag_out_rs``, ``pack_seq_triton``, ``unpack_seq_triton``, ``CPTritonContext``):
change the import, keep the calls. Inputs are torch tensors (CPU or CUDA), numpy arrays or
cupy arrays; outputs are of the same kind (other array types: convert them first, e.g.
with torch.from_dlpack). CUDA work runs on the
caller's current stream; nothing synchronises with the host except pack_seq without
``max_len`` and unpack_seq without ``total`` (they need L or T). Bad input raises
ValueError / TypeError with the C++ message (argument, expected, got).
"""
import math

from . import _C
from ._arrays import _KINDS, empty, kind, prepare, squeeze_dim, stream_of, torch_stream, zeros
from ._groups import FRAMEWORKS, bind

__version__ = _C.__version__
__all__ = [
    "Context", "CPTritonContext", "correct_attn_out", "merge_attn_states", "merge_attn_states_varlen", "pack_seq",
    "unpack_seq",
    "pack_seq_triton", "unpack_seq_triton", "cp_lse_ag_out_rs", "cp_lse_ag_out_ar", "cp_lse_a2a_merge",
]


class Context:
    """Kept for API compatibility (vLLM's CPTritonContext). cpattn caches its per-stream
    workspaces itself, so a Context carries nothing and any instance (or None) works."""

    def __init__(self, *args, **kwargs):
        self.inner_kernel = None


CPTritonContext = Context


def _lengths_array(lengths, like, name):
    """An index array (lengths, cu_seqlens, offsets): a list becomes int64 of like's kind and device."""
    if isinstance(lengths, (list, tuple)):
        if kind(like) == "torch":
            import torch
            return torch.tensor(lengths, dtype=torch.int64, device=like.device)
        import numpy
        return numpy.asarray(lengths, dtype=numpy.int64)
    return prepare(lengths, name)


def _float_data(x, name):
    """numpy's default float is f64, which the merge kernels do not take: say how to fix it."""
    if kind(x, name) == "numpy" and x.dtype.char == "d":
        raise ValueError(f"cpattn: invalid {name}: expected dtype f32/f16/bf16, got a float64 numpy array "
                         f"(numpy's default; pass {name}.astype(np.float32))")
    return x


def correct_attn_out(out, lses, cp_rank, ctx=None, *, is_lse_base_on_e=True, kv_lens=None, new_out=None,
                     enable_pdl=False, return_lse=True):
    """Scale this rank's attention output by its share of the merged softmax, in place
    (or into ``new_out``). out [B, H, D] (or [B, 1, H, D]), lses [N, B, H] (or [N, B, H, 1])
    all ranks' LSEs, kv_lens optional [N, B]. Returns (out, lse [B, H]) as vLLM's does, or
    only out with return_lse=False (no lse is allocated or written).
    enable_pdl: programmatic dependent launch on sm_90+ (the kernel is scheduled while the
    one before it on the stream finishes; see Context::set_pdl)."""
    # Host time per call is most of a decode step's budget: torch tensors in the common forms
    # (3-D, in place, lses of the same type) take one type lookup and read nothing twice.
    is_torch = (_KINDS.get(type(out)) or kind(out, "out")) == "torch"
    if is_torch:
        o = out.detach() if out.requires_grad else out
        l = (lses.detach() if lses.requires_grad else lses) if type(lses) is type(out) else prepare(lses, "lses")
        stream = torch_stream(o)
    else:
        o, l = _float_data(out, "out"), prepare(lses, "lses")
        stream = stream_of(o)
    if o.ndim == 4:
        o = squeeze_dim(o, 1, "out")
    if l.ndim == 4:
        l = squeeze_dim(l, -1, "lses")
    if new_out is None:
        target, t = out, o
    else:
        target = new_out
        t = prepare(new_out, "new_out")
        if t.ndim == 4:
            t = squeeze_dim(t, 1, "new_out")
    lse, lse_new = None, False
    if return_lse:
        if o.ndim == 3:  # [B, H] from out (lses is checked against out before lse is written)
            shape = o.shape
            if is_torch:
                lse, lse_new = l.new_empty(shape[0], shape[1]), True  # new: _C reads only its data pointer
            else:
                lse = empty(l, (shape[0], shape[1]))
        else:
            lse = empty(l, l.shape[1:])
    _C.correct_attn_out(o, l, cp_rank if type(cp_rank) is int else int(cp_rank), t, lse, lse_new,
                        not is_lse_base_on_e, None if kv_lens is None else prepare(kv_lens, "kv_lens"),
                        bool(enable_pdl), stream)
    return (target, lse) if return_lse else target


def _merge_output(o, shape, out, out_scale):
    """The output of the merges: ``out`` if given, else a new array of o's kind: of o's dtype, or
    fp8 e4m3 with ``out_scale`` (torch only: numpy and cupy have no fp8 dtype, DLPack gives
    theirs none). Returns it and out_scale as _C takes it."""
    if out_scale is None:
        return (empty(o, shape) if out is None else out), None
    scale = prepare(out_scale, "out_scale")
    given = kind(o) if out is None else kind(out, "out")
    if given != "torch":
        raise TypeError(f"cpattn: invalid out_scale: expected torch tensors (an fp8 e4m3 output is a "
                        f"torch.float8_e4m3fn tensor; numpy and cupy have no fp8 dtype, so use torch), "
                        f"got {given} arrays")
    if out is None:
        import torch
        out = empty(o, shape, torch.float8_e4m3fn)
    return out, scale


def merge_attn_states(outs, lses, *, is_lse_base_on_e=True, kv_lens=None, out=None, enable_pdl=False, out_scale=None,
                      return_lse=True):
    """Merge N partials: outs [N, B, H, D], lses [N, B, H] -> (out [B, H, D], lse [B, H]), or
    only out with return_lse=False. Empty partials (lse -inf/NaN/+inf, or kv_lens [N, B] == 0)
    add exact zeros; a row with no partial at all gets lse -inf and out 0. out_scale: a
    one-element f32 tensor on the data's device; the output is then fp8 e4m3 (a new
    torch.float8_e4m3fn tensor, or the given fp8 ``out``) holding round(merged / scale),
    saturating at +-448 (torch only). enable_pdl: as for correct_attn_out."""
    o, l = prepare(_float_data(outs, "outs"), "outs"), prepare(lses, "lses")
    out, scale = _merge_output(o, o.shape[1:], out, out_scale)
    lse = empty(l, l.shape[1:]) if return_lse else None
    _C.merge_attn_states(o, l, prepare(out, "out"), lse, not is_lse_base_on_e,
                         None if kv_lens is None else prepare(kv_lens, "kv_lens"), scale, bool(enable_pdl),
                         stream_of(o))
    return (out, lse) if return_lse else out


def merge_attn_states_varlen(outs, lses, offsets, *, is_lse_base_on_e=True, out=None, out_scale=None,
                             return_lse=True, enable_pdl=False):
    """Merge a variable number of partials per row (split-KV decode): outs [P, H, D] and
    lses [P, H] hold every row's partials back to back, offsets [B + 1] (int32/int64, or a
    list) says row b's are [offsets[b], offsets[b + 1]) -> (out [B, H, D], lse [B, H]), or
    only out with return_lse=False. Same math, empty rules, out_scale and enable_pdl as
    merge_attn_states; a row with no partials gets lse -inf and out 0. CPU arrays: offsets
    are checked (ValueError); CUDA: never read on the host, each row's range is clamped to
    [0, P]."""
    o, l = prepare(_float_data(outs, "outs"), "outs"), prepare(lses, "lses")
    offs = _lengths_array(offsets, o, "offsets")
    # B from offsets; a malformed offsets array gets B = 0 here and the C++ check's error
    batch = offs.shape[0] - 1 if offs.ndim == 1 and offs.shape[0] > 0 else 0
    out, scale = _merge_output(o, (batch,) + tuple(o.shape[1:]), out, out_scale)
    lse = empty(l, (batch,) + tuple(l.shape[1:])) if return_lse else None
    _C.merge_attn_states_varlen(o, l, offs, prepare(out, "out"), lse, not is_lse_base_on_e, scale, bool(enable_pdl),
                                stream_of(o))
    return (out, lse) if return_lse else out


def _check_batch(padded, padded_name, lens, cu):
    """padded.shape[0] == B, checked here because torch CUDA lengths reach the C++ side as
    offsets: its message would name cu_seqlens to a caller who passed lengths."""
    batch = lens.shape[0] - (1 if cu else 0)
    if padded.ndim >= 1 and padded.shape[0] != batch:
        raise ValueError(f"cpattn: invalid {padded_name}: expected size {batch} (B, from "
                         f"{'cu_seqlens' if cu else 'lengths'}) in dim 0, got {_C.describe(padded, padded_name)}")


def _as_cu_seqlens_on_cuda(lens, cu, like):
    """torch CUDA lengths -> clamped prefix offsets with torch ops (stream-ordered, capturable),
    so the C++ side needs no workspace: a CUDA graph may capture on a stream it never saw."""
    if cu or kind(like) != "torch" or not like.is_cuda:
        return lens, cu
    import torch
    offsets = torch.zeros(lens.shape[0] + 1, dtype=torch.int64, device=lens.device)
    torch.cumsum(lens.clamp(min=0), 0, out=offsets[1:])
    return offsets, True


def _seq_stats(lengths, cu, like):
    return _C.seq_length_stats(lengths, cu, stream_of(like))


def _lengths_of(lengths, cu_seqlens, like):
    cu = cu_seqlens is not None
    if not cu and lengths is None:
        raise ValueError("cpattn: invalid lengths: expected lengths [B] or cu_seqlens [B + 1], got neither")
    lens = _lengths_array(cu_seqlens if cu else lengths, like, "cu_seqlens" if cu else "lengths")
    return lens, cu


def pack_seq(x, lengths=None, pad_value=-math.inf, max_len=None, *, cu_seqlens=None, out=None):
    """x [T, ...] -> [B, L, ...]: row t of sequence b is x[start_b + t], rows past its length
    hold pad_value. L = max_len if given (longer sequences are truncated), else
    max(lengths), which synchronises with the host once. sum(lengths) may be less than T
    (a padded token batch): the rows of x past the sum are not read."""
    x = prepare(x, "x")
    lens, cu = _lengths_of(lengths, cu_seqlens, x)
    batch = lens.shape[0] - (1 if cu else 0)
    if max_len is None:
        _, max_len, total = _seq_stats(lens, cu, x)
        if total > x.shape[0]:
            raise ValueError(f"cpattn: invalid {'cu_seqlens' if cu else 'lengths'}: expected lengths summing to at most "
                             f"T = {x.shape[0]} (x.shape[0]), got a sum of {total}")
    if out is None:
        out = empty(x, (batch, int(max_len)) + tuple(x.shape[1:]))
    else:
        _check_batch(prepare(out, "out"), "out", lens, cu)
    lens, cu = _as_cu_seqlens_on_cuda(lens, cu, x)
    _C.pack_seq(x, lens, prepare(out, "out"), float(pad_value), cu, stream_of(x))
    return out


def unpack_seq(packed, lengths=None, total=None, *, cu_seqlens=None, out=None):
    """packed [B, L, ...] -> [T, ...] with T = sum(lengths) (a host sync) unless ``total``.
    With ``total`` past the sum, the rows past it are zero in a new output and left as they
    were in a given ``out``."""
    packed = prepare(packed, "packed")
    lens, cu = _lengths_of(lengths, cu_seqlens, packed)
    _check_batch(packed, "packed", lens, cu)
    if total is None:
        _, longest, total = _seq_stats(lens, cu, packed)
        if longest > packed.shape[1]:
            raise ValueError(f"cpattn: invalid {'cu_seqlens' if cu else 'lengths'}: expected lengths <= "
                             f"L = {packed.shape[1]} (packed.shape[1]), got a length of {longest}")
        if out is None:
            out = empty(packed, (int(total),) + tuple(packed.shape[2:]))
    elif out is None:
        out = zeros(packed, (int(total),) + tuple(packed.shape[2:]))
    lens, cu = _as_cu_seqlens_on_cuda(lens, cu, packed)
    _C.unpack_seq(packed, lens, prepare(out, "out"), cu, stream_of(packed))
    return out


def pack_seq_triton(x, lengths, pad_value=-math.inf, block_t=64, block_d=64):
    """vLLM's signature; block sizes are accepted and not needed."""
    return pack_seq(x, lengths, pad_value)


def unpack_seq_triton(packed_tensor, lengths, block_t=64, block_d=64):
    """vLLM's signature; block sizes are accepted and not needed."""
    return unpack_seq(packed_tensor, lengths)


_CP_OPS = _C.cp_ops  # {"rs": cpattn::CpOp::rs, ...}: the C++ enums' values
_CP_PATHS = _C.cp_paths  # {"auto": cpattn::CpPath::automatic, "collectives": ..., "direct": ...}


def _cp(op, cp_attn_out, cp_attn_lse, cp_group, return_lse, is_lse_base_on_e, kv_lens, path):
    """The one implementation behind the three cp functions: the C++ cp_combine over the
    group's own NCCL communicator, or over an adapter of its collectives (_groups.py)."""
    if path not in _CP_PATHS:
        raise ValueError(f"cpattn: invalid path: expected 'auto', 'collectives' or 'direct', got {path!r}")
    out, lse = prepare(_float_data(cp_attn_out, "cp_attn_out"), "cp_attn_out"), prepare(cp_attn_lse, "cp_attn_lse")
    binding = bind(cp_group, out)
    n = binding.world_size
    if n == 1:
        return (cp_attn_out, cp_attn_lse) if return_lse else cp_attn_out
    if out.ndim != 3:
        raise ValueError(f"cpattn: invalid cp_attn_out: expected a 3-D tensor [B, H, D], got shape {tuple(out.shape)}")
    b, h, d = out.shape
    kept = h if op == "ar" else h // n
    result = empty(out, (b, kept, d))
    out_lse = empty(lse, (b, kept)) if return_lse else None
    if binding.adapter is not None:
        binding.adapter.like = out
    _C.cp_combine(_CP_OPS[op], out, lse, binding.nccl_comm, binding.adapter, binding.rank, n, FRAMEWORKS[kind(out)],
                  result, out_lse, not is_lse_base_on_e, None if kv_lens is None else prepare(kv_lens, "kv_lens"),
                  _CP_PATHS[path], stream_of(out))
    return (result, out_lse) if return_lse else result


def _dispatch_cp(op, cp_attn_out, cp_attn_lse, cp_group, return_lse, is_lse_base_on_e, kv_lens, path):
    """Under torch.compile the cp functions go through their registered custom op (opaque to
    the compiler, with a fake implementation); eager calls go straight to _cp."""
    if kind(cp_attn_out, "cp_attn_out") == "torch" and _torch_ops.compiling():
        return _torch_ops.cp_combine(op, cp_attn_out, cp_attn_lse, cp_group, return_lse, is_lse_base_on_e, kv_lens,
                                     path)
    return _cp(op, cp_attn_out, cp_attn_lse, cp_group, return_lse, is_lse_base_on_e, kv_lens, path)


def cp_lse_ag_out_rs(cp_attn_out, cp_attn_lse, cp_group, ctx=None, return_lse=False, *, is_lse_base_on_e=True,
                     kv_lens=None, path="auto"):
    """Combine this rank's partial with the group's: every rank's lse is gathered, the
    outputs are merged over heads, rank r keeps heads [r*H/N, (r+1)*H/N). cp_attn_out
    [B, H, D], cp_attn_lse [B, H]; kv_lens [B] marks this rank's empty shards (0: ignore its
    lse and out). Returns out [B, H/N, D] (and lse [B, H/N] with return_lse). World size 1
    returns the input untouched. cp_group: a torch.distributed process group, a vLLM
    GroupCoordinator (or anything with world_size, rank_in_group, all_gather,
    reduce_scatter) or an mpi4py communicator. path: 'auto' (the direct NVLink transport
    where the group's NCCL communicator allows it and the size is under the crossover, else
    the collectives), 'collectives' or 'direct' (an error where it cannot run)."""
    return _dispatch_cp("rs", cp_attn_out, cp_attn_lse, cp_group, return_lse, is_lse_base_on_e, kv_lens, path)


def cp_lse_ag_out_ar(cp_attn_out, cp_attn_lse, cp_group, ctx=None, return_lse=False, *, is_lse_base_on_e=True,
                     kv_lens=None, path="auto"):
    """As cp_lse_ag_out_rs, but every rank keeps all heads: out [B, H, D] (lse [B, H])."""
    return _dispatch_cp("ar", cp_attn_out, cp_attn_lse, cp_group, return_lse, is_lse_base_on_e, kv_lens, path)


def cp_lse_a2a_merge(cp_attn_out, cp_attn_lse, cp_group, ctx=None, return_lse=False, *, is_lse_base_on_e=True,
                     kv_lens=None, path="auto"):
    """The cp_lse_ag_out_rs result with one rounding: every rank's partial for this rank's
    heads and its f32 lse move in one all-to-all (or the direct transport) and are merged in
    f32."""
    return _dispatch_cp("a2a", cp_attn_out, cp_attn_lse, cp_group, return_lse, is_lse_base_on_e, kv_lens, path)


from . import _torch_ops  # noqa: E402  (registers torch.ops.cpattn.* when torch is present)
