"""torch.ops.cpattn.*: the ops as torch custom ops with fake (meta) implementations, so
torch.compile traces them and CUDA graphs capture them. Registered only if torch imports.

The cp functions take a group object, which a custom op cannot: their op takes a name for
it instead (a torch process group's group_name, or the key bind() registers a group object
under on its first, eager call)."""
from ._groups import groups_by_key, object_key

try:
    import torch
except ImportError:  # numpy/cupy users need no torch
    torch = None


def compiling():
    """Whether torch.compile is tracing the caller (False without torch)."""
    return torch is not None and torch.compiler.is_compiling()


def _group_key(group):
    """A string naming the group for the custom op: a torch process group by its registered
    name (which torch.compile can read), any other group object by its id in a registry."""
    import torch.distributed as dist
    if isinstance(group, dist.ProcessGroup):
        return "torch:" + group.group_name
    return object_key(group)  # registered by bind() on the group's first (eager) call


def _group_of(key):
    if key.startswith("torch:"):
        from torch.distributed.distributed_c10d import _resolve_process_group
        return _resolve_process_group(key[len("torch:"):])
    if key not in groups_by_key:
        raise ValueError("cpattn: invalid cp_group: expected a group used once eagerly before torch.compile traces "
                         "a cp function with it (its first call binds it), got one never called")
    return groups_by_key[key]


def cp_combine(op, out, lse, group, return_lse, is_lse_base_on_e, kv_lens, path):
    """The cp functions under torch.compile: torch.ops.cpattn.cp_combine with the group's key."""
    result, result_lse = torch.ops.cpattn.cp_combine(out, lse, _group_key(group), op, is_lse_base_on_e, kv_lens, path)
    return (result, result_lse) if return_lse else result


if torch is not None:
    from typing import Optional

    from torch import Tensor

    @torch.library.custom_op("cpattn::correct_attn_out", mutates_args=("out",))
    def correct_attn_out(out: Tensor, lses: Tensor, cp_rank: int, is_lse_base_on_e: bool = True) -> Tensor:
        from . import correct_attn_out as impl
        return impl(out, lses, cp_rank, is_lse_base_on_e=is_lse_base_on_e)[1]

    @correct_attn_out.register_fake
    def _(out, lses, cp_rank, is_lse_base_on_e=True):
        return lses.new_empty(lses.shape[1:])

    @torch.library.custom_op("cpattn::merge_attn_states", mutates_args=())
    def merge_attn_states(outs: Tensor, lses: Tensor, is_lse_base_on_e: bool = True,
                          out_scale: Optional[Tensor] = None) -> tuple[Tensor, Tensor]:
        from . import merge_attn_states as impl
        return impl(outs, lses, is_lse_base_on_e=is_lse_base_on_e, out_scale=out_scale)

    def _merged_like(outs, shape, out_scale):
        """The fake output of a merge: outs' dtype, or fp8 e4m3 with an out_scale."""
        return outs.new_empty(shape, dtype=outs.dtype if out_scale is None else torch.float8_e4m3fn)

    @merge_attn_states.register_fake
    def _(outs, lses, is_lse_base_on_e=True, out_scale=None):
        return _merged_like(outs, outs.shape[1:], out_scale), lses.new_empty(lses.shape[1:])

    @torch.library.custom_op("cpattn::merge_attn_states_varlen", mutates_args=())
    def merge_attn_states_varlen(outs: Tensor, lses: Tensor, offsets: Tensor, is_lse_base_on_e: bool = True,
                                 out_scale: Optional[Tensor] = None) -> tuple[Tensor, Tensor]:
        from . import merge_attn_states_varlen as impl
        return impl(outs, lses, offsets, is_lse_base_on_e=is_lse_base_on_e, out_scale=out_scale)

    @merge_attn_states_varlen.register_fake
    def _(outs, lses, offsets, is_lse_base_on_e=True, out_scale=None):
        batch = offsets.shape[0] - 1  # B from the offsets' shape: no data read
        out = _merged_like(outs, (batch,) + tuple(outs.shape[1:]), out_scale)
        return out, lses.new_empty((batch,) + tuple(lses.shape[1:]))

    @torch.library.custom_op("cpattn::pack_seq", mutates_args=())
    def pack_seq(x: Tensor, lengths: Tensor, pad_value: float, max_len: int) -> Tensor:
        from . import pack_seq as impl
        return impl(x, lengths, pad_value, max_len)

    @pack_seq.register_fake
    def _(x, lengths, pad_value, max_len):
        return x.new_empty((lengths.shape[0], max_len) + tuple(x.shape[1:]))

    @torch.library.custom_op("cpattn::unpack_seq", mutates_args=())
    def unpack_seq(packed: Tensor, lengths: Tensor, total: int) -> Tensor:
        from . import unpack_seq as impl
        return impl(packed, lengths, total)

    @unpack_seq.register_fake
    def _(packed, lengths, total):
        return packed.new_empty((total,) + tuple(packed.shape[2:]))

    @torch.library.custom_op("cpattn::cp_combine", mutates_args=())
    def cp_combine_op(out: Tensor, lse: Tensor, group_key: str, op: str, is_lse_base_on_e: bool,
                      kv_lens: Optional[Tensor], path: str) -> tuple[Tensor, Tensor]:
        from . import _cp
        result = _cp(op, out, lse, _group_of(group_key), True, is_lse_base_on_e, kv_lens, path)
        return result[0].clone() if result[0] is out else result[0], result[1].clone() if result[1] is lse else result[1]

    @cp_combine_op.register_fake
    def _(out, lse, group_key, op, is_lse_base_on_e, kv_lens, path):
        from ._groups import world_size_of
        n = world_size_of(_group_of(group_key))
        b, h, d = out.shape
        kept = h if op == "ar" or n == 1 else h // n
        return out.new_empty((b, kept, d)), lse.new_empty((b, kept))
