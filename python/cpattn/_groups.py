"""cp_group binding: what the C++ cp functions run over for a Python group object.

A group backed by NCCL hands over its own communicator (a torch.distributed NCCL process
group through ``ProcessGroupNCCL._comm_ptr()``; a vLLM GroupCoordinator through
``device_communicator.pynccl_comm.comm``) and the C++ code drives it directly: the same
cp logic, the same collectives or the direct NVLink transport, no Python on the data path.
Any other group (gloo, mpi4py, a vLLM-style group without a communicator, CPU data) gets an
adapter: the C++ code calls its all_gather / reduce_scatter / all_reduce / all_to_all with
1-D uint8 views of its buffers and the element dtype's name, and the adapter runs the
group's own tensor collectives on them. vLLM is never imported.
"""
import sys

from ._arrays import kind

FRAMEWORKS = {"torch": 0, "numpy": 1, "cupy": 2}


class Binding:
    """How one group drives the C++ cp functions for data on one device."""

    def __init__(self, world_size, rank, nccl_comm=0, adapter=None):
        self.world_size, self.rank, self.nccl_comm, self.adapter = world_size, rank, nccl_comm, adapter


def _torch_dtype(name):
    import torch
    return {"f64": torch.float64, "f32": torch.float32, "f16": torch.float16, "bf16": torch.bfloat16,
            "i64": torch.int64, "i32": torch.int32, "u8": torch.uint8}[name]


class TorchGroupAdapter:
    """A torch.distributed process group (gloo, or NCCL where its communicator is not
    reachable): the tensor collectives of the backend, in the current stream's order."""

    def __init__(self, pg):
        import torch.distributed as dist
        self._dist, self._pg = dist, pg
        self.world_size, self.rank_in_group = dist.get_world_size(pg), dist.get_rank(pg)

    def all_gather(self, send, recv, dtype):
        self._dist.all_gather_into_tensor(recv, send, group=self._pg)

    def reduce_scatter(self, send, recv, dtype):
        s, r = send.view(_torch_dtype(dtype)), recv.view(_torch_dtype(dtype))
        try:
            self._dist.reduce_scatter_tensor(r, s, group=self._pg)
        except (RuntimeError, NotImplementedError, ValueError):  # a backend without reduce-scatter
            total = s.float() if s.dtype in (_torch_dtype("f16"), _torch_dtype("bf16")) else s.clone()
            self._dist.all_reduce(total, group=self._pg)
            r.copy_(total.view(self.world_size, -1)[self.rank_in_group])

    def all_reduce(self, send, recv, dtype):
        s, r = send.view(_torch_dtype(dtype)), recv.view(_torch_dtype(dtype))
        if r.data_ptr() != s.data_ptr():
            r.copy_(s)
        try:
            self._dist.all_reduce(r, group=self._pg)
        except (RuntimeError, NotImplementedError, ValueError):  # no sum in this dtype: sum in f32
            total = r.float()
            self._dist.all_reduce(total, group=self._pg)
            r.copy_(total)

    def all_to_all(self, send, recv, dtype):
        self._dist.all_to_all_single(recv, send, group=self._pg)

    def all_gather_host(self, data):
        got = [None] * self.world_size
        self._dist.all_gather_object(got, data, group=self._pg)
        return b"".join(got)


def _host_bytes(t):
    """A host numpy uint8 copy (or the array itself) of a 1-D uint8 view of any kind."""
    k = kind(t)
    if k == "numpy":
        return t
    if k == "cupy":
        import cupy
        return cupy.asnumpy(t)
    return t.cpu().numpy()


def _store_bytes(recv, host):
    k = kind(recv)
    if k == "numpy":
        recv[...] = host
    elif k == "cupy":
        import cupy
        recv[...] = cupy.asarray(host)
    else:
        import torch
        recv.copy_(torch.from_numpy(host))


def _as_f32(raw, dtype):
    """uint8 bytes of `dtype` elements -> float32 (float64 stays float64) for a sum."""
    import numpy as np
    if dtype == "bf16":
        return (raw.view(np.uint16).astype(np.uint32) << 16).view(np.float32)
    return raw.view({"f64": np.float64, "f32": np.float32, "f16": np.float16}[dtype]).astype(
        np.float64 if dtype == "f64" else np.float32)


def _from_f32(x, dtype):
    """float32 (or float64) sums -> uint8 bytes of `dtype`, rounded to nearest even."""
    import numpy as np
    if dtype == "bf16":
        bits = x.astype(np.float32).view(np.uint32)
        rounded = (bits + 0x7FFF + ((bits >> 16) & 1)) >> 16
        rounded = np.where(np.isnan(x), 0x7FC0, rounded)
        return rounded.astype(np.uint16).view(np.uint8)
    return x.astype({"f64": np.float64, "f32": np.float32, "f16": np.float16}[dtype]).view(np.uint8)


class MpiAdapter:
    """An mpi4py communicator: data goes through host memory (numpy buffers), so it works for
    every array kind on any MPI; sums run in float32 (float64 stays float64)."""

    def __init__(self, comm):
        self._comm = comm
        self.world_size, self.rank_in_group = comm.Get_size(), comm.Get_rank()

    def all_gather(self, send, recv, dtype):
        import numpy as np
        out = np.empty(recv.shape[0], np.uint8)
        self._comm.Allgather(np.ascontiguousarray(_host_bytes(send)), out)
        _store_bytes(recv, out)

    def reduce_scatter(self, send, recv, dtype):
        import numpy as np
        from mpi4py import MPI
        x = _as_f32(np.ascontiguousarray(_host_bytes(send)), dtype)
        part = np.empty(x.shape[0] // self.world_size, x.dtype)
        self._comm.Reduce_scatter_block(x, part, op=MPI.SUM)
        _store_bytes(recv, _from_f32(part, dtype))

    def all_reduce(self, send, recv, dtype):
        import numpy as np
        from mpi4py import MPI
        x = _as_f32(np.ascontiguousarray(_host_bytes(send)), dtype)
        total = np.empty_like(x)
        self._comm.Allreduce(x, total, op=MPI.SUM)
        _store_bytes(recv, _from_f32(total, dtype))

    def all_to_all(self, send, recv, dtype):
        import numpy as np
        out = np.empty(recv.shape[0], np.uint8)
        self._comm.Alltoall(np.ascontiguousarray(_host_bytes(send)), out)
        _store_bytes(recv, out)

    def all_gather_host(self, data):
        return b"".join(self._comm.allgather(data))


class VllmGroupAdapter:
    """A vLLM-style group without a reachable NCCL communicator: its all_gather(t, dim),
    reduce_scatter(t, dim) and all_reduce(t) (all-to-all as an all-gather and a pick)."""

    def __init__(self, group):
        self._g = group
        self.world_size, self.rank_in_group = group.world_size, group.rank_in_group

    @staticmethod
    def _typed(t, dtype):
        if kind(t) == "torch":
            return t.view(_torch_dtype(dtype))
        import numpy as np
        return t.view({"f64": np.float64, "f32": np.float32, "f16": np.float16, "i64": np.int64,
                       "i32": np.int32, "u8": np.uint8}[dtype])

    @staticmethod
    def _put(recv, got):
        if kind(recv) == "torch":
            recv.copy_(got.reshape(-1).contiguous().view(recv.dtype))
        else:
            recv[...] = got.reshape(-1).view(recv.dtype)

    def all_gather(self, send, recv, dtype):
        self._put(recv, self._g.all_gather(send, dim=0))

    def reduce_scatter(self, send, recv, dtype):
        self._put(recv, self._g.reduce_scatter(self._typed(send, dtype), dim=0))

    def all_reduce(self, send, recv, dtype):
        self._put(recv, self._g.all_reduce(self._typed(send, dtype).copy() if kind(send) != "torch"
                                           else self._typed(send, dtype).clone()))

    def all_to_all(self, send, recv, dtype):
        n, r = self.world_size, self.rank_in_group
        full = self._g.all_gather(send, dim=0).reshape(n, n, -1)  # [source, destination, bytes]
        self._put(recv, full[:, r])

    def all_gather_host(self, data):
        import numpy as np
        like = self.like
        buf = np.frombuffer(data, np.uint8).copy()
        if kind(like) == "torch":
            import torch
            got = self._g.all_gather(torch.from_numpy(buf).to(like.device), dim=0).cpu().numpy()
        elif kind(like) == "cupy":
            import cupy
            got = cupy.asnumpy(self._g.all_gather(cupy.asarray(buf), dim=0))
        else:
            got = self._g.all_gather(buf, dim=0)
        return np.asarray(got, np.uint8).tobytes()


def _torch_nccl_comm(pg, like):
    """The ncclComm_t of a torch NCCL process group on the tensor's GPU, or 0. torch creates
    it lazily: a group that has not communicated yet runs one tiny all-reduce first."""
    import torch
    import torch.distributed as dist
    if kind(like) != "torch" or not like.is_cuda:
        return 0
    try:
        backend = pg._get_backend(like.device)
    except (RuntimeError, AttributeError, ValueError):
        return 0
    comm_ptr = getattr(backend, "_comm_ptr", None)  # torch >= 2.9 (ProcessGroupNCCL)
    if comm_ptr is None or "nccl" not in type(backend).__name__.lower():
        return 0
    try:
        ptr = int(comm_ptr())
    except RuntimeError:
        ptr = 0
    if ptr == 0:
        dist.all_reduce(torch.zeros(1, device=like.device), group=pg)
        ptr = int(comm_ptr())
    return ptr


def _vllm_nccl_comm(group, like):
    """vLLM's GroupCoordinator.device_communicator.pynccl_comm.comm (a ctypes ncclComm_t) on
    CUDA data, or 0."""
    pynccl = getattr(getattr(group, "device_communicator", None), "pynccl_comm", None)
    comm = getattr(pynccl, "comm", None)
    if comm is None or getattr(pynccl, "disabled", False) or kind(like) not in ("torch", "cupy"):
        return 0
    if kind(like) == "torch" and not like.is_cuda:
        return 0
    value = getattr(comm, "value", comm)
    return int(value) if value else 0


def world_size_of(g):
    """The group's size, without binding it (torch.compile's fake implementation uses it)."""
    if hasattr(g, "world_size"):
        return g.world_size
    if hasattr(g, "Get_size"):
        return g.Get_size()
    import torch.distributed as dist
    return dist.get_world_size(g)


_bindings = {}
groups_by_key = {}  # the custom op's names of group objects (torch process groups go by group_name)


def object_key(group):
    return f"object:{id(group)}"


def bind(group, like):
    """The Binding of `group` for arrays like `like` (cached per group and array kind: the C++
    side keeps one Communicator per binding, whose consistency check runs once per call
    signature)."""
    key = (id(group), kind(like, "cp_attn_out"), like.device.index if kind(like) == "torch" and like.is_cuda else -1)
    hit = _bindings.get(key)
    if hit is not None and hit[0] is group:
        return hit[1]
    binding = _make_binding(group, like)
    _bindings[key] = (group, binding)  # holds the group: its id is never reused meanwhile
    groups_by_key[object_key(group)] = group
    return binding


def _make_binding(g, like):
    if all(hasattr(g, a) for a in ("world_size", "rank_in_group", "all_gather", "reduce_scatter")):
        comm = _vllm_nccl_comm(g, like)
        if comm:
            return Binding(g.world_size, g.rank_in_group, nccl_comm=comm)
        return Binding(g.world_size, g.rank_in_group, adapter=VllmGroupAdapter(g))
    if "torch" in sys.modules:
        import torch.distributed as dist
        if isinstance(g, dist.ProcessGroup):
            size, rank = dist.get_world_size(g), dist.get_rank(g)
            comm = _torch_nccl_comm(g, like)
            if comm:
                return Binding(size, rank, nccl_comm=comm)
            return Binding(size, rank, adapter=TorchGroupAdapter(g))
    if type(g).__module__.startswith("mpi4py") and hasattr(g, "Allgather"):
        return Binding(g.Get_size(), g.Get_rank(), adapter=MpiAdapter(g))
    raise TypeError("cpattn: invalid cp_group: expected a vLLM-style group (world_size, rank_in_group, "
                    "all_gather, reduce_scatter), a torch.distributed ProcessGroup or an mpi4py communicator, "
                    f"got {type(g).__name__}")
