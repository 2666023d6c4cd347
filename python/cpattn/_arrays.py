"""Array plumbing: allocate outputs of the caller's kind (torch, numpy, cupy), find the
current CUDA stream, and a few element-wise helpers, without importing what is absent."""


_KINDS = {}  # type -> "torch" / "cupy" / "numpy": one dict lookup per call after a type's first


def _kind_of_type(t):
    mod = getattr(t, "__module__", None) or ""
    for k in ("torch", "cupy", "numpy"):
        if mod.startswith(k):
            return k
    return None


def kind(x, name="tensor"):
    k = _KINDS.get(type(x))
    if k is None:
        k = _kind_of_type(type(x))
        if k is None:  # not cached: a program may make array-like types without end
            raise TypeError(f"cpattn: invalid {name}: expected a torch tensor, numpy array or cupy array, "
                            f"got {type(x).__name__}")
        _KINDS[type(x)] = k
    return k


def prepare(x, name="tensor"):
    """What goes to the C++ side: torch tensors that require grad are detached (no copy)."""
    if kind(x, name) == "torch" and x.requires_grad:
        return x.detach()
    return x


def empty(like, shape, dtype=None):
    k = kind(like)
    if k == "torch":  # sizes as separate ints: torch parses them in half the time of a tuple
        if not shape:
            return like.new_empty((), dtype=dtype or like.dtype)
        return like.new_empty(*shape) if dtype is None else like.new_empty(*shape, dtype=dtype)
    if k == "cupy":
        import cupy
        with cupy.cuda.Device(like.device.id):
            return cupy.empty(tuple(shape), dtype=dtype or like.dtype)
    import numpy
    return numpy.empty(tuple(shape), dtype=dtype or like.dtype)


def zeros(like, shape):
    k = kind(like)
    if k == "torch":
        return like.new_zeros(tuple(shape))
    if k == "cupy":
        import cupy
        with cupy.cuda.Device(like.device.id):
            return cupy.zeros(tuple(shape), dtype=like.dtype)
    import numpy
    return numpy.zeros(tuple(shape), dtype=like.dtype)


def float32_like(like):
    k = kind(like)
    if k == "torch":
        import torch
        return torch.float32
    import numpy
    return numpy.float32


def _torch_raw_stream():
    """torch's current-stream pointer for a device index, without building a Stream object
    (torch._C._cuda_getCurrentRawStream, as Triton uses; the public API where it is absent)."""
    import torch
    raw = getattr(torch._C, "_cuda_getCurrentRawStream", None)
    return raw if raw is not None else lambda index: torch.cuda.current_stream(index).cuda_stream


_raw_stream = None


def torch_stream(x):
    """The current stream of a torch tensor's device (0 for a CPU tensor)."""
    global _raw_stream
    if not x.is_cuda:
        return 0
    if _raw_stream is None:
        _raw_stream = _torch_raw_stream()
    return _raw_stream(x.get_device())


def stream_of(x):
    """The caller's current stream for a CUDA array (0 for CPU arrays)."""
    k = kind(x)
    if k == "torch":
        return torch_stream(x)
    if k == "cupy":
        import cupy
        return cupy.cuda.get_current_stream().ptr
    return 0


def squeeze_dim(x, dim, name):
    """vLLM's 4-D layouts: out [B, 1, H, D] and lses [N, B, H, 1]."""
    if x.shape[dim] != 1:
        raise ValueError(f"cpattn: invalid {name}: expected size 1 in dim {dim} of a 4-D {name}, got shape {tuple(x.shape)}")
    if kind(x) == "torch":
        return x.squeeze(dim)
    return x.reshape(tuple(s for i, s in enumerate(x.shape) if i != dim % x.ndim))
