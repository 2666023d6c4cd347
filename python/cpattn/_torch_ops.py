"""torch.ops.cpattn.*: the ops as torch custom ops with fake (meta) implementations, so
torch.compile traces them and CUDA graphs capture them. Registered only if torch imports."""
try:
    import torch
except ImportError:  # numpy/cupy users need no torch
    torch = None

if torch is not None:
    from torch import Tensor

    @torch.library.custom_op("cpattn::correct_attn_out", mutates_args=("out",))
    def correct_attn_out(out: Tensor, lses: Tensor, cp_rank: int, is_lse_base_on_e: bool = True) -> Tensor:
        from . import correct_attn_out as impl
        return impl(out, lses, cp_rank, is_lse_base_on_e=is_lse_base_on_e)[1]

    @correct_attn_out.register_fake
    def _(out, lses, cp_rank, is_lse_base_on_e=True):
        return lses.new_empty(lses.shape[1:])

    @torch.library.custom_op("cpattn::merge_attn_states", mutates_args=())
    def merge_attn_states(outs: Tensor, lses: Tensor, is_lse_base_on_e: bool = True) -> tuple[Tensor, Tensor]:
        from . import merge_attn_states as impl
        return impl(outs, lses, is_lse_base_on_e=is_lse_base_on_e)

    @merge_attn_states.register_fake
    def _(outs, lses, is_lse_base_on_e=True):
        return outs.new_empty(outs.shape[1:]), lses.new_empty(lses.shape[1:])

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
