// cpattn._C: the C++ ops over any DLPack array (numpy, torch, cupy ...). Private: the
// public, validating package is python/cpattn. cpattn::Error becomes ValueError.
#include <nanobind/nanobind.h>
#include <nanobind/ndarray.h>
#include <nanobind/stl/optional.h>
#include <nanobind/stl/string.h>
#include <nanobind/stl/tuple.h>

#include <cstring>
#include <map>
#include <memory>
#include <optional>
#include <tuple>
#include <utility>
#include <vector>

#include "cpattn/config.hpp"
#include "cpattn/cpattn.hpp"
#if CPATTN_HAS_NCCL
#include "cpattn/nccl_comm.hpp"
#endif

namespace nb = nanobind;
using cpattn::DType;
using cpattn::TensorView;
using Array = nb::ndarray<nb::ro>;  // read-only inputs welcome; outputs are checked by output_view
using Obj = nb::handle;  // a torch tensor or any DLPack array

namespace {

DType to_dtype(const Array& a, const char* name) {
  const auto t = a.dtype();
  using C = nb::dlpack::dtype_code;
  const auto code = static_cast<C>(t.code);
  if (t.lanes == 1) {
    if (code == C::Float && t.bits == 64) return DType::f64;
    if (code == C::Float && t.bits == 32) return DType::f32;
    if (code == C::Float && t.bits == 16) return DType::f16;
    if (code == C::Bfloat && t.bits == 16) return DType::bf16;
    if (code == C::Float8_E4M3FN && t.bits == 8) return DType::fp8_e4m3;
    if (code == C::Float8_E5M2 && t.bits == 8) return DType::fp8_e5m2;
    if (code == C::Int && t.bits == 64) return DType::i64;
    if (code == C::Int && t.bits == 32) return DType::i32;
    if (code == C::Int && t.bits == 16) return DType::i16;
    if (code == C::Int && t.bits == 8) return DType::i8;
    if ((code == C::UInt || code == C::Bool) && t.bits == 8) return DType::u8;
  }
  static const char* const kinds[] = {"int", "uint", "float", "opaque", "bfloat", "complex", "bool"};
  const std::string kind = t.code < 7 ? kinds[t.code] : "DLPack type code " + std::to_string(t.code);
  throw nb::type_error((std::string("cpattn: invalid ") + name + ": expected an array of dtype f64/f32/f16/bf16/fp8/"
                        "int64/int32/int16/int8/uint8, got " + kind + std::to_string(t.bits) +
                        (t.lanes == 1 ? "" : " x" + std::to_string(t.lanes)))
                           .c_str());
}

TensorView dlpack_view(const Array& a, const char* name) {
  cpattn::Device device;
  if (a.device_type() == nb::device::cuda::value) device = cpattn::Device::cuda(a.device_id());
  else if (a.device_type() != nb::device::cpu::value)
    throw nb::type_error((std::string("cpattn: invalid ") + name + ": expected a CPU or CUDA array, got DLPack device " +
                          std::to_string(a.device_type())).c_str());
  if (a.ndim() > static_cast<size_t>(cpattn::kMaxDims))
    throw nb::value_error((std::string("cpattn: invalid ") + name + ": expected at most 8 dims").c_str());
  int64_t shape[cpattn::kMaxDims], strides[cpattn::kMaxDims];
  for (size_t i = 0; i < a.ndim(); ++i) shape[i] = static_cast<int64_t>(a.shape(i)), strides[i] = a.stride(i);
  return TensorView(const_cast<void*>(a.data()), to_dtype(a, name), std::span<const int64_t>(shape, a.ndim()),
                    std::span<const int64_t>(strides, a.ndim()), device);
}

std::string py_str(nb::handle h) { return nb::str(h).c_str(); }

// torch tensors are read directly (data_ptr, shape, stride, dtype, device): torch's
// __dlpack__ costs several microseconds per tensor, most of a decode step's host budget.
// The attribute names are interned once and each attribute is read with one lookup (a method
// through PyObject_CallMethodNoArgs, no bound-method object): these reads are most of the
// host time of a call on small tensors.
struct TorchTypes {
  nb::object tensor;                     // torch.Tensor, or None while torch is not imported
  std::vector<std::pair<nb::object, DType>> dtypes;
  nb::object dtype, is_cuda, is_cpu, device, shape, stride, data_ptr, get_device;  // interned names
};

const TorchTypes& torch_types() {
  static TorchTypes& t = *new TorchTypes;  // never destroyed: it holds Python objects past finalisation
  if (!t.tensor.is_valid() || t.tensor.is_none()) {
    // sys.modules, read without importing anything: never import torch ourselves
    PyObject* module = PyDict_GetItemString(PyImport_GetModuleDict(), "torch");
    if (!module || module == Py_None) return t;
    nb::object torch = nb::borrow(module);
    const std::pair<const char*, DType> names[] = {
        {"float32", DType::f32}, {"bfloat16", DType::bf16}, {"float16", DType::f16}, {"int32", DType::i32},
        {"int64", DType::i64},   {"float64", DType::f64},   {"int16", DType::i16},   {"int8", DType::i8},
        {"uint8", DType::u8},    {"bool", DType::u8},       {"float8_e4m3fn", DType::fp8_e4m3}, {"float8_e5m2", DType::fp8_e5m2}};
    for (const auto& [name, dtype] : names)  // the common dtypes first: the lookup stops at the first match
      if (nb::hasattr(torch, name)) t.dtypes.emplace_back(torch.attr(name), dtype);
    const auto intern = [](const char* name) { return nb::steal(PyUnicode_InternFromString(name)); };
    t.dtype = intern("dtype"), t.is_cuda = intern("is_cuda"), t.is_cpu = intern("is_cpu"), t.device = intern("device");
    t.shape = intern("shape"), t.stride = intern("stride"), t.data_ptr = intern("data_ptr");
    t.get_device = intern("get_device");
    t.tensor = torch.attr("Tensor");  // last: set means every field above is
  }
  return t;
}

// x.<name>, or x.<name>() for a method; the new reference, or a Python error raised.
nb::object attr_of(nb::handle x, const nb::object& name) {
  PyObject* r = PyObject_GetAttr(x.ptr(), name.ptr());
  if (!r) throw nb::python_error();
  return nb::steal(r);
}
nb::object call_method(nb::handle x, const nb::object& name) {
  PyObject* r = PyObject_CallMethodNoArgs(x.ptr(), name.ptr());
  if (!r) throw nb::python_error();
  return nb::steal(r);
}

// The ints of a tuple (torch.Size is one) into `values`.
void read_ints(const nb::object& tuple, size_t n, int64_t* values) {
  for (size_t i = 0; i < n; ++i) {
    values[i] = PyLong_AsLongLong(PyTuple_GET_ITEM(tuple.ptr(), static_cast<Py_ssize_t>(i)));
    if (values[i] == -1 && PyErr_Occurred()) throw nb::python_error();
  }
}

TensorView torch_view(nb::handle x, const TorchTypes& torch, const char* name) {
  const nb::object dtype_obj = attr_of(x, torch.dtype);
  const DType* dtype = nullptr;
  for (const auto& [obj, dt] : torch.dtypes)
    if (obj.is(dtype_obj)) {
      dtype = &dt;
      break;
    }
  if (!dtype)
    throw nb::type_error((std::string("cpattn: invalid ") + name + ": expected a tensor of dtype float64/float32/"
                          "float16/bfloat16/float8/int64/int32/int16/int8/uint8, got " +
                          py_str(dtype_obj)).c_str());
  cpattn::Device device;
  if (attr_of(x, torch.is_cuda).is(Py_True))
    device = cpattn::Device::cuda(nb::cast<int>(call_method(x, torch.get_device)));
  else if (!attr_of(x, torch.is_cpu).is(Py_True))
    throw nb::type_error((std::string("cpattn: invalid ") + name + ": expected a CPU or CUDA tensor, got device " +
                          py_str(attr_of(x, torch.device))).c_str());
  const nb::object shape = attr_of(x, torch.shape), stride = call_method(x, torch.stride);
  if (!PyTuple_Check(shape.ptr()) || !PyTuple_Check(stride.ptr()))
    throw nb::type_error(
        (std::string("cpattn: invalid ") + name + ": expected a torch tensor with a shape and strides").c_str());
  const size_t ndim = static_cast<size_t>(PyTuple_GET_SIZE(shape.ptr()));
  if (ndim > static_cast<size_t>(cpattn::kMaxDims))
    throw nb::value_error((std::string("cpattn: invalid ") + name + ": expected at most 8 dims").c_str());
  if (static_cast<size_t>(PyTuple_GET_SIZE(stride.ptr())) != ndim)
    throw nb::type_error((std::string("cpattn: invalid ") + name + ": expected one stride per dim").c_str());
  int64_t sizes[cpattn::kMaxDims], strides[cpattn::kMaxDims];
  read_ints(shape, ndim, sizes);
  read_ints(stride, ndim, strides);
  const auto data = nb::cast<uintptr_t>(call_method(x, torch.data_ptr));
  return TensorView(reinterpret_cast<void*>(data), *dtype, std::span<const int64_t>(sizes, ndim),
                    std::span<const int64_t>(strides, ndim), device);
}

bool is_torch_tensor(nb::handle x, const TorchTypes& torch) {
  return torch.tensor.is_valid() && !torch.tensor.is_none() && nb::isinstance(x, torch.tensor);
}

// Any non-torch array through DLPack.
TensorView array_view(nb::handle x, const char* name) {
  Array a;
  if (!nb::try_cast(x, a))
    throw nb::type_error((std::string("cpattn: invalid ") + name + ": expected a torch tensor or a DLPack array "
                          "(numpy, cupy ...), got " + py_str(x.type().attr("__name__"))).c_str());
  return dlpack_view(a, name);
}

TensorView view(nb::handle x, const char* name) {
  const TorchTypes& torch = torch_types();
  if (is_torch_tensor(x, torch)) return torch_view(x, torch, name);
  return array_view(x, name);
}

// A tensor the op writes: a read-only numpy array (np.broadcast_to, frombuffer of bytes)
// must not be written through its DLPack pointer.
TensorView output_view(nb::handle x, const char* name) {
  const TorchTypes& torch = torch_types();
  if (is_torch_tensor(x, torch)) return torch_view(x, torch, name);
  if (nb::hasattr(x, "flags") && nb::hasattr(x.attr("flags"), "writeable") &&
      !nb::cast<bool>(x.attr("flags").attr("writeable")))
    throw nb::value_error((std::string("cpattn: invalid ") + name + ": expected a writable array, got a read-only " +
                           py_str(x.type().attr("__name__")))
                              .c_str());
  return array_view(x, name);
}

// The options of merge/correct; `scale` the view of out_scale, kept alive by the caller.
cpattn::MergeOptions merge_options(bool lse_base_two, const std::optional<TensorView>& kv,
                                   const std::optional<TensorView>& scale = std::nullopt) {
  cpattn::MergeOptions opt;
  opt.lse_base = lse_base_two ? cpattn::LseBase::two : cpattn::LseBase::e;
  opt.kv_lens = kv ? &*kv : nullptr;
  opt.out_scale = scale ? &*scale : nullptr;
  return opt;
}

std::optional<TensorView> optional_view(Obj x, const char* name) {
  if (x.is_none()) return std::nullopt;
  return view(x, name);
}

std::optional<TensorView> optional_output_view(Obj x, const char* name) {
  if (x.is_none()) return std::nullopt;
  return output_view(x, name);
}

// One Context per (device, stream) and thread: workspaces are reused across calls.
cpattn::Context* context(cpattn::Device device, uintptr_t stream, bool pdl = false) {
  if (device.type == cpattn::DeviceType::cpu) return nullptr;
  thread_local std::map<std::tuple<int, uintptr_t>, cpattn::Context> contexts;
  const auto key = std::make_tuple(device.index, stream);
  auto it = contexts.find(key);
  if (it == contexts.end())
    it = contexts.emplace(key, cpattn::Context(device, reinterpret_cast<cpattn::Stream>(stream))).first;
  it->second.set_pdl(pdl);
  return &it->second;
}

void merge(Obj outs, Obj lses, Obj out, Obj out_lse, bool lse_base_two, Obj kv_lens, Obj out_scale, bool pdl,
           uintptr_t stream) {
  const TensorView o = view(outs, "outs"), l = view(lses, "lses"), r = output_view(out, "out");
  const std::optional<TensorView> ol = optional_output_view(out_lse, "out_lse"),
                                  kv = optional_view(kv_lens, "kv_lens"), scale = optional_view(out_scale, "out_scale");
  const cpattn::MergeOptions opt = merge_options(lse_base_two, kv, scale);
  nb::gil_scoped_release release;
  cpattn::merge_attn_states(o, l, r, ol ? &*ol : nullptr, opt, context(o.device, stream, pdl));
}

void merge_varlen(Obj outs, Obj lses, Obj offsets, Obj out, Obj out_lse, bool lse_base_two, Obj out_scale, bool pdl,
                  uintptr_t stream) {
  const TensorView o = view(outs, "outs"), l = view(lses, "lses"), off = view(offsets, "offsets"),
                   r = output_view(out, "out");
  const std::optional<TensorView> ol = optional_output_view(out_lse, "out_lse"),
                                  scale = optional_view(out_scale, "out_scale");
  const cpattn::MergeOptions opt = merge_options(lse_base_two, std::nullopt, scale);
  nb::gil_scoped_release release;
  cpattn::merge_attn_states_varlen(o, l, off, r, ol ? &*ol : nullptr, opt, context(o.device, stream, pdl));
}

// Reading a torch tensor's metadata takes six attribute calls, a large part of
// correct_attn_out's host time, so the common call reads two tensors in full:
// in place (new_out is out, vLLM's form) reuses out's view, and an out_lse that the package
// has just allocated (lse_new: a new contiguous torch tensor [B, H] of lses' dtype and device,
// B and H those of out) is read for its data pointer alone.
void correct(Obj out, Obj lses, int64_t rank, Obj new_out, Obj out_lse, bool lse_new, bool lse_base_two, Obj kv_lens,
             bool pdl, uintptr_t stream) {
  const TensorView o = view(out, "out"), l = view(lses, "lses");
  const TorchTypes& torch = torch_types();
  const bool in_place = new_out.is(out);
  const TensorView n =
      in_place && is_torch_tensor(out, torch) ? o : output_view(new_out, in_place ? "out" : "new_out");
  std::optional<TensorView> ol;
  if (lse_new && o.ndim == 3 && is_torch_tensor(out_lse, torch)) {
    const int64_t shape[2] = {o.shape[0], o.shape[1]};
    ol = TensorView(reinterpret_cast<void*>(nb::cast<uintptr_t>(call_method(out_lse, torch.data_ptr))), l.dtype,
                    std::span<const int64_t>(shape, 2), l.device);
  } else {
    ol = optional_output_view(out_lse, "out_lse");
  }
  const std::optional<TensorView> kv = optional_view(kv_lens, "kv_lens");
  const cpattn::MergeOptions opt = merge_options(lse_base_two, kv);
  nb::gil_scoped_release release;
  cpattn::correct_attn_out(o, l, rank, n, ol ? &*ol : nullptr, opt, context(o.device, stream, pdl));
}

void pack(Obj x, Obj lengths, Obj out, double pad_value, bool cu, uintptr_t stream) {
  const TensorView xv = view(x, "x"), lv = view(lengths, cu ? "cu_seqlens" : "lengths"), ov = output_view(out, "out");
  cpattn::PackOptions opt;
  opt.pad_value = pad_value;
  opt.cu_seqlens = cu;
  nb::gil_scoped_release release;
  cpattn::pack_seq(xv, lv, ov, opt, context(xv.device, stream));
}

void unpack(Obj packed, Obj lengths, Obj out, bool cu, uintptr_t stream) {
  const TensorView pv = view(packed, "packed"), lv = view(lengths, cu ? "cu_seqlens" : "lengths"), ov = output_view(out, "out");
  cpattn::PackOptions opt;
  opt.cu_seqlens = cu;
  nb::gil_scoped_release release;
  cpattn::unpack_seq(pv, lv, ov, opt, context(pv.device, stream));
}

// ------------------------------------------------------------------ the cp functions
// Python only adapts the group; the cp logic is the C++ cp_combine. A group backed by NCCL
// hands over its own ncclComm_t (wrapped in NcclComm, once per communicator); any other
// group is driven through a Python adapter whose collectives receive views of the buffers.

// Views of cpattn's buffers, of the kind the caller's arrays are.
enum class Framework : int { torch = 0, numpy = 1, cupy = 2 };

// A Communicator whose collectives call back into a Python adapter (python/cpattn/_groups.py)
// with 1-D uint8 views of the send and receive buffers and the element dtype's name; the
// adapter runs the group's own tensor collectives on them, in stream order.
class PythonGroupComm final : public cpattn::Communicator {
 public:
  PythonGroupComm(nb::handle adapter, int rank, int size)
      : adapter_(nb::borrow(adapter)), rank_(rank), size_(size) {}
  void set_framework(Framework f) { framework_ = f; }
  int rank() const override { return rank_; }
  int size() const override { return size_; }
  std::string name() const override { return "python group"; }
  bool accepts(cpattn::Device) const override { return true; }
  void all_gather(const void* send, void* recv, size_t count, DType dt, cpattn::Context& ctx) override {
    call("all_gather", send, count, recv, count * static_cast<size_t>(size_), dt, ctx);
  }
  void reduce_scatter(const void* send, void* recv, size_t count, DType dt, cpattn::Context& ctx) override {
    call("reduce_scatter", send, count * static_cast<size_t>(size_), recv, count, dt, ctx);
  }
  void all_reduce(const void* send, void* recv, size_t count, DType dt, cpattn::Context& ctx) override {
    call("all_reduce", send, count, recv, count, dt, ctx);
  }
  void all_to_all(const void* send, void* recv, size_t count, DType dt, cpattn::Context& ctx) override {
    call("all_to_all", send, count * static_cast<size_t>(size_), recv, count * static_cast<size_t>(size_), dt, ctx);
  }
  void all_gather_host(const void* send, void* recv, size_t bytes) override {
    nb::gil_scoped_acquire gil;
    const nb::bytes all = nb::cast<nb::bytes>(adapter_.attr("all_gather_host")(nb::bytes(static_cast<const char*>(send), bytes)));
    if (all.size() != bytes * static_cast<size_t>(size_))
      throw cpattn::Error("cp_group", std::to_string(bytes * static_cast<size_t>(size_)) + " bytes from all_gather_host",
                          std::to_string(all.size()));
    std::memcpy(recv, all.c_str(), all.size());
  }

 private:
  nb::object view(const void* p, size_t count, DType dt, const cpattn::Context& ctx) const {
    const size_t shape[1] = {count * cpattn::dtype_size(dt)};
    const cpattn::Device d = ctx.device();
    const int device_type = d.type == cpattn::DeviceType::cuda ? nb::device::cuda::value : nb::device::cpu::value;
    void* data = const_cast<void*>(p);
    switch (framework_) {
      case Framework::torch:
        return nb::ndarray<nb::pytorch>(data, 1, shape, nb::handle(), nullptr, nb::dtype<uint8_t>(), device_type, d.index).cast(nb::rv_policy::reference);
      case Framework::cupy:
        return nb::ndarray<nb::cupy>(data, 1, shape, nb::handle(), nullptr, nb::dtype<uint8_t>(), device_type, d.index).cast(nb::rv_policy::reference);
      case Framework::numpy:
        break;
    }
    return nb::ndarray<nb::numpy>(data, 1, shape, nb::handle(), nullptr, nb::dtype<uint8_t>(), device_type, d.index).cast(nb::rv_policy::reference);
  }
  void call(const char* method, const void* send, size_t send_count, void* recv, size_t recv_count, DType dt,
            cpattn::Context& ctx) {
    nb::gil_scoped_acquire gil;
    adapter_.attr(method)(view(send, send_count, dt, ctx), view(recv, recv_count, dt, ctx), cpattn::dtype_name(dt));
  }
  nb::object adapter_;
  int rank_, size_;
  Framework framework_ = Framework::numpy;
};

// One Communicator per group for the life of the process (the first_call consistency check
// remembers agreed calls on it), never destroyed: it may hold Python objects and NCCL
// windows past interpreter and communicator shutdown.
cpattn::Communicator& group_comm(nb::handle adapter, int rank, int size) {
  static auto& comms = *new std::map<uintptr_t, std::unique_ptr<PythonGroupComm>>;
  auto& c = comms[reinterpret_cast<uintptr_t>(adapter.ptr())];
  if (!c) c = std::make_unique<PythonGroupComm>(adapter, rank, size);
  return *c;
}

#if CPATTN_HAS_NCCL
cpattn::Communicator& nccl_comm(uintptr_t comm, int device) {
  static auto& comms = *new std::map<std::pair<uintptr_t, int>, std::unique_ptr<cpattn::NcclComm>>;
  auto& c = comms[{comm, device}];
  if (!c) c = std::make_unique<cpattn::NcclComm>(reinterpret_cast<ncclComm_t>(comm), device);
  return *c;
}
#endif

// The cp functions' Context: one per device (and thread), on the caller's current stream, so
// that a call captured into a CUDA graph (torch captures on a stream of its own) finds the
// workspace its eager call reserved. cp calls on one device are stream-ordered by the
// engine; two streams running them at once on one device would share the workspace.
cpattn::Context* cp_context(cpattn::Device device, uintptr_t stream) {
  if (device.type == cpattn::DeviceType::cpu) return nullptr;
  thread_local std::map<int, cpattn::Context> contexts;
  auto it = contexts.find(device.index);
  if (it == contexts.end()) it = contexts.emplace(device.index, cpattn::Context(device)).first;
  it->second.set_stream(reinterpret_cast<cpattn::Stream>(stream));
  return &it->second;
}

// op and path: the values of cpattn::CpOp and cpattn::CpPath, as _C.cp_ops and _C.cp_paths
// name them. The group is either an NCCL communicator (nccl_comm != 0) or a Python adapter
// with rank and size.
void cp(int op, Obj out, Obj lse, uintptr_t nccl_communicator, Obj adapter, int rank, int size, int framework,
        Obj result, Obj out_lse, bool lse_base_two, Obj kv_lens, int path, uintptr_t stream) {
  const TensorView o = view(out, "cp_attn_out"), l = view(lse, "cp_attn_lse"), r = output_view(result, "result");
  std::optional<TensorView> ol, kv;
  if (!out_lse.is_none()) ol = output_view(out_lse, "out_lse");
  if (!kv_lens.is_none()) kv = view(kv_lens, "kv_lens");
  cpattn::CpOptions opt;
  opt.lse_base = lse_base_two ? cpattn::LseBase::two : cpattn::LseBase::e;
  opt.kv_lens = kv ? &*kv : nullptr;
  opt.out_lse = ol ? &*ol : nullptr;
  opt.path = static_cast<cpattn::CpPath>(path);
  cpattn::Communicator* comm = nullptr;
  if (nccl_communicator) {
#if CPATTN_HAS_NCCL
    if (o.device.type != cpattn::DeviceType::cuda)
      throw cpattn::Error("cp_attn_out", "a CUDA tensor for a group backed by NCCL", o.describe());
    comm = &nccl_comm(nccl_communicator, o.device.index);
#else
    throw cpattn::Error("cp_group", "a group cpattn can drive (this cpattn was built without NCCL)", "an NCCL group");
#endif
  } else {
    auto& g = static_cast<PythonGroupComm&>(group_comm(adapter, rank, size));
    g.set_framework(static_cast<Framework>(framework));
    comm = &g;
  }
  cpattn::Context* ctx = cp_context(o.device, stream);
  nb::gil_scoped_release release;
  cpattn::cp_combine(static_cast<cpattn::CpOp>(op), o, l, *comm, r, opt, ctx);
}

std::tuple<int64_t, int64_t, int64_t> stats(Obj lengths, bool cu, uintptr_t stream) {
  const TensorView lv = view(lengths, cu ? "cu_seqlens" : "lengths");
  nb::gil_scoped_release release;
  const auto s = cpattn::seq_length_stats(lv, cu, context(lv.device, stream));
  return {s.batch, s.max_len, s.total};
}

}  // namespace

NB_MODULE(_C, m) {
  m.doc() = "cpattn C++ ops over DLPack arrays (private: use the cpattn package)";
  nb::register_exception_translator([](const std::exception_ptr& p, void*) {
    try {
      std::rethrow_exception(p);
    } catch (const cpattn::Error& e) {
      PyErr_SetString(PyExc_ValueError, e.what());
    }
  });
  m.attr("__version__") = CPATTN_VERSION;
  m.attr("has_cuda") = static_cast<bool>(CPATTN_HAS_CUDA);
  m.def("merge_attn_states", &merge, nb::arg("outs"), nb::arg("lses"), nb::arg("out"), nb::arg("out_lse").none(),
        nb::arg("lse_base_two"), nb::arg("kv_lens").none(), nb::arg("out_scale").none(), nb::arg("pdl"),
        nb::arg("stream"));
  m.def("merge_attn_states_varlen", &merge_varlen, nb::arg("outs"), nb::arg("lses"), nb::arg("offsets"), nb::arg("out"),
        nb::arg("out_lse").none(), nb::arg("lse_base_two"), nb::arg("out_scale").none(), nb::arg("pdl"),
        nb::arg("stream"));
  m.def("correct_attn_out", &correct, nb::arg("out"), nb::arg("lses"), nb::arg("rank"), nb::arg("new_out"),
        nb::arg("out_lse").none(), nb::arg("lse_new"), nb::arg("lse_base_two"), nb::arg("kv_lens").none(), nb::arg("pdl"),
        nb::arg("stream"));
  m.def("pack_seq", &pack, nb::arg("x"), nb::arg("lengths"), nb::arg("out"), nb::arg("pad_value"),
        nb::arg("cu_seqlens"), nb::arg("stream"));
  m.def("unpack_seq", &unpack, nb::arg("packed"), nb::arg("lengths"), nb::arg("out"), nb::arg("cu_seqlens"),
        nb::arg("stream"));
  m.def("describe", [](Obj x, const char* name) { return view(x, name).describe(); }, nb::arg("x"), nb::arg("name"));
  m.attr("has_nccl") = static_cast<bool>(CPATTN_HAS_NCCL);
  // cpattn::CpOp and cpattn::CpPath by the names the Python cp functions use
  nb::dict cp_ops, cp_paths;
  cp_ops["rs"] = static_cast<int>(cpattn::CpOp::rs);
  cp_ops["ar"] = static_cast<int>(cpattn::CpOp::ar);
  cp_ops["a2a"] = static_cast<int>(cpattn::CpOp::a2a);
  for (cpattn::CpPath p : {cpattn::CpPath::automatic, cpattn::CpPath::collectives, cpattn::CpPath::direct})
    cp_paths[cpattn::cp_path_name(p)] = static_cast<int>(p);
  m.attr("cp_ops") = cp_ops;
  m.attr("cp_paths") = cp_paths;
  m.def("cp_combine", &cp, nb::arg("op"), nb::arg("out"), nb::arg("lse"), nb::arg("nccl_comm"), nb::arg("adapter").none(),
        nb::arg("rank"), nb::arg("size"), nb::arg("framework"), nb::arg("result"), nb::arg("out_lse").none(),
        nb::arg("lse_base_two"), nb::arg("kv_lens").none(), nb::arg("path"), nb::arg("stream"));
  m.def("seq_length_stats", &stats, nb::arg("lengths"), nb::arg("cu_seqlens"), nb::arg("stream"));
}
