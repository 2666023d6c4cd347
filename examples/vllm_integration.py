"""Recipe: how an inference engine swaps vLLM's Triton functions (`vllm.attention.ops.common`)
for cpattn's, keeping vLLM's call forms.

It runs without vLLM and without GPUs: a stand-in for vLLM's GroupCoordinator (the four
attributes the cp functions use: world_size, rank_in_group, all_gather(t, dim),
reduce_scatter(t, dim), plus all_reduce(t)) and a stand-in `vllm.attention.ops.common`
module registered in sys.modules. The same steps apply to the real module and groups.

Run, with the build tree or after `pip install .`:
    PYTHONPATH=build/python python3 examples/vllm_integration.py
Needs numpy; with torch installed it also runs the torch (CPU) variant.
"""
import functools
import operator
import sys
import threading
import types

import numpy as np

import cpattn

# Code you own swaps one import and keeps its calls:
# from vllm.attention.ops.common import (CPTritonContext, correct_attn_out, cp_lse_ag_out_rs,
#                                        pack_seq_triton, unpack_seq_triton)
from cpattn import CPTritonContext, correct_attn_out, cp_lse_ag_out_rs, pack_seq_triton, unpack_seq_triton
# Code you do not own (vLLM's attention backends import them from vLLM's module) gets them
# through install() and rebind_imported() below, before the engine starts.

# vLLM's names that cpattn provides with the same call forms
SWAPPED = ("CPTritonContext", "correct_attn_out", "cp_lse_ag_out_rs", "pack_seq_triton", "unpack_seq_triton")


# ---------------------------------------------------------------- the swap
def install(module):
    """Points `module`'s functions (vllm.attention.ops.common) at cpattn's. Code that looks them
    up through the module afterwards (`common.cp_lse_ag_out_rs(...)`, or a `from ... import`
    that runs later) gets cpattn's."""
    for name in SWAPPED:
        setattr(module, name, getattr(cpattn, name))


def rebind_imported(originals):
    """A module that ran `from vllm.attention.ops.common import cp_lse_ag_out_rs` before the swap
    holds vLLM's function under its own name: rebind every such name in every loaded module."""
    for mod in list(sys.modules.values()):
        names = getattr(mod, "__dict__", {})  # the module's own names (no lazy __getattr__)
        for name, original in originals.items():
            if names.get(name) is original:
                setattr(mod, name, getattr(cpattn, name))


# ---------------------------------------------------------------- stand-ins for vLLM
def make_stand_in_vllm():
    """Registers an empty `vllm.attention.ops.common` whose functions stand for vLLM's Triton ones.
    With vLLM installed, skip this: `import vllm.attention.ops.common as common` instead."""
    def triton_only(name):
        def call(*args, **kwargs):
            raise RuntimeError(f"{name}: vLLM's Triton function, not available in this recipe")
        call.__name__ = name
        return call

    parts = ("vllm", "vllm.attention", "vllm.attention.ops", "vllm.attention.ops.common")
    for i, name in enumerate(parts):
        sys.modules[name] = types.ModuleType(name)
        if i:
            setattr(sys.modules[parts[i - 1]], name.rsplit(".", 1)[1], sys.modules[name])
    common = sys.modules["vllm.attention.ops.common"]
    for name in SWAPPED:
        setattr(common, name, triton_only(name))
    return common


class _World:
    """`size` ranks as threads of this process; exchange() is a collective over them."""

    def __init__(self, size):
        self.size = size
        self.slots = [None] * size
        self.barrier = threading.Barrier(size, timeout=60)

    def exchange(self, rank, t, combine):
        self.slots[rank] = t
        self.barrier.wait()
        result = combine(list(self.slots))
        self.barrier.wait()  # nobody refills the slots before every rank has read them
        return result


class StandInGroup:
    """The attributes of vLLM's GroupCoordinator that cpattn's cp functions use (duck-typed:
    cpattn never imports vLLM). Works on numpy arrays and torch tensors."""

    def __init__(self, world, rank):
        self._world = world
        self.world_size = world.size
        self.rank_in_group = rank

    @staticmethod
    def _lib(t):
        return np if isinstance(t, np.ndarray) else sys.modules["torch"]

    def all_gather(self, t, dim=0):
        lib = self._lib(t)
        cat = np.concatenate if lib is np else lib.cat
        return self._world.exchange(self.rank_in_group, t, lambda parts: cat(parts, dim))

    def reduce_scatter(self, t, dim=0):
        def combine(parts):
            total = functools.reduce(operator.add, parts)  # summed in the data dtype, as NCCL does
            if self._lib(t) is np:
                return np.ascontiguousarray(np.split(total, self.world_size, axis=dim)[self.rank_in_group])
            return total.chunk(self.world_size, dim)[self.rank_in_group].contiguous()
        return self._world.exchange(self.rank_in_group, t, combine)

    def all_reduce(self, t):
        return self._world.exchange(self.rank_in_group, t, lambda parts: functools.reduce(operator.add, parts))


def run_ranks(size, fn):
    """fn(group) on `size` threads, one stand-in group each; returns their results in rank order."""
    world = _World(size)
    results, errors = [None] * size, []

    def body(rank):
        try:
            results[rank] = fn(StandInGroup(world, rank))
        except BaseException as e:  # noqa: BLE001 (re-raised below)
            errors.append(e)
            world.barrier.abort()  # release the other ranks
    threads = [threading.Thread(target=body, args=(r,)) for r in range(size)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
    return results


# ---------------------------------------------------------------- an engine's attention code
def attention_f64(q, k, v, lo, hi):
    """q [B, H, D], k/v [B, S, D] -> out [B, H, D], natural-log lse [B, H] over keys [lo_b, hi_b)."""
    keep = (np.arange(k.shape[1])[None] >= lo[:, None]) & (np.arange(k.shape[1])[None] < hi[:, None])
    scores = np.einsum("bhd,bsd->bhs", q, k) / np.sqrt(q.shape[-1])
    scores = np.where(keep[:, None, :], scores, -np.inf)
    m = scores.max(-1, keepdims=True)
    m = np.where(np.isfinite(m), m, 0.0)
    total = np.exp(scores - m).sum(-1)
    with np.errstate(divide="ignore"):
        lse = np.log(total) + m[..., 0]
    p = np.exp(scores - m) / np.where(total > 0, total, 1.0)[..., None]
    return np.einsum("bhs,bsd->bhd", p, v), lse


def decode_step(group, problem, as_array):
    """What an engine's CP attention backend does per layer, written against vLLM's names."""
    from vllm.attention.ops.common import CPTritonContext, cp_lse_ag_out_rs  # resolved after the swap

    q, k, v, kv_len = problem
    n, rank = group.world_size, group.rank_in_group
    chunk = (kv_len + n - 1) // n
    lo, hi = np.minimum(kv_len, rank * chunk), np.minimum(kv_len, (rank + 1) * chunk)
    out, lse = attention_f64(q, k, v, lo, hi)  # this rank's partial over its KV shard
    out, lse = as_array(out.astype(np.float32)), as_array(lse.astype(np.float32))
    ctx = CPTritonContext()  # accepted, not needed
    return cp_lse_ag_out_rs(out, lse, group, ctx)  # [B, H / n, D]: this rank's heads, merged


def check_decode(size, as_array, to_numpy, label):
    rng = np.random.default_rng(1)
    B, S, H, D = 6, 40, 4 * size, 64
    q, k, v = rng.standard_normal((B, H, D)), rng.standard_normal((B, S, D)), rng.standard_normal((B, S, D))
    kv_len = rng.integers(1, S + 1, B)
    kv_len[1] = 1  # fewer keys than ranks: an empty shard on every rank but one
    full, _ = attention_f64(q, k, v, np.zeros(B, np.int64), kv_len)
    results = run_ranks(size, lambda g: decode_step(g, (q, k, v, kv_len), as_array))
    merged = np.concatenate([to_numpy(r) for r in results], axis=1)  # every rank's heads, in order
    err = np.abs(merged - full).max()
    assert err < 1e-5, f"{label}: max |result - unsplit| = {err}"
    print(f"{label}: cp_lse_ag_out_rs over {size} simulated rank(s) matches unsplit attention (max err {err:.1e})")


def check_single_calls(as_array, to_numpy, label):
    from vllm.attention.ops.common import correct_attn_out, cp_lse_ag_out_rs, pack_seq_triton, unpack_seq_triton

    rng = np.random.default_rng(2)
    out = as_array(rng.standard_normal((3, 4, 8), dtype=np.float32))
    lse = as_array(rng.standard_normal((3, 4), dtype=np.float32))
    [same] = run_ranks(1, lambda g: cp_lse_ag_out_rs(out, lse, g))
    assert same is out  # world size 1: the input, untouched (vLLM's rule)

    # correct_attn_out(out, lses, cp_rank, ctx) -> (out, lse), in place, as vLLM's
    lses = rng.standard_normal((2, 3, 4), dtype=np.float32)
    corrected, merged_lse = correct_attn_out(out, as_array(lses), 1, None)
    assert corrected is out
    want_lse = np.logaddexp(lses[0].astype(np.float64), lses[1])
    assert np.allclose(to_numpy(merged_lse), want_lse, atol=1e-5)

    # pack_seq_triton / unpack_seq_triton: vLLM's signatures, -inf padding by default
    x = as_array(rng.standard_normal((7, 2, 16), dtype=np.float32))
    lengths = as_array(np.array([2, 0, 5], dtype=np.int64))
    packed = pack_seq_triton(x, lengths)  # [3, 5, 2, 16]
    assert tuple(packed.shape) == (3, 5, 2, 16) and np.all(to_numpy(packed)[1] == -np.inf)
    assert np.array_equal(to_numpy(unpack_seq_triton(packed, lengths)), to_numpy(x))
    print(f"{label}: correct_attn_out, world size 1, pack_seq_triton / unpack_seq_triton as vLLM's call forms")


def main():
    common = make_stand_in_vllm()
    # engine code that imported a function before the swap (a model module loaded early)
    early = types.ModuleType("engine_attention_backend")
    exec("from vllm.attention.ops.common import cp_lse_ag_out_rs", early.__dict__)
    sys.modules[early.__name__] = early

    originals = {name: getattr(common, name) for name in SWAPPED}
    install(common)  # 1. the module's names now point at cpattn's
    rebind_imported(originals)  # 2. and so do the names imported before
    assert early.cp_lse_ag_out_rs is cpattn.cp_lse_ag_out_rs
    # the module now gives what `from cpattn import ...` gives
    assert (common.CPTritonContext, common.correct_attn_out, common.cp_lse_ag_out_rs, common.pack_seq_triton,
            common.unpack_seq_triton) == (CPTritonContext, correct_attn_out, cp_lse_ag_out_rs, pack_seq_triton,
                                          unpack_seq_triton)
    print("swapped vllm.attention.ops.common: " + ", ".join(SWAPPED))

    kinds = [("numpy", lambda a: a, lambda a: np.asarray(a))]
    try:
        import torch
        kinds.append(("torch", torch.from_numpy, lambda t: t.detach().cpu().numpy()))
    except ImportError:
        print("torch not installed: the torch variant is skipped")
    for label, as_array, to_numpy in kinds:
        check_single_calls(as_array, to_numpy, label)
        for size in (1, 2, 4):
            check_decode(size, as_array, to_numpy, label)
    print("vllm_integration: every check passed")


if __name__ == "__main__":
    main()
