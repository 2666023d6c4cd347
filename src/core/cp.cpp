// cp_lse_ag_out_rs / cp_lse_ag_out_ar / cp_lse_a2a_merge, written once against
// Communicator. Two transports: the direct one (one kernel over the communicator's
// symmetric buffers, src/cuda/cp_direct.cu) where cp_plan picks it, else the collectives,
// where every data step is the merge/correct row kernel with a different row map:
//   mask   : lse -> f32 send buffer (kv_lens applied)          merge, N = 1, D = 0
//   correct: out -> [N, B, H/N, D] reduce-scatter layout        correct, split row map
//   pack   : out + lse -> per-destination all-to-all chunks     merge, N = 1 (weight 1, exact)
//   merge  : N received chunks -> result                        merge, strided views
#include <cstring>
#include <sstream>
#include <vector>

#include "cpattn/cp.hpp"
#include "route.hpp"
#include "validate.hpp"

namespace cpattn {

const char* cp_op_name(CpOp op) {
  switch (op) {
    case CpOp::rs: return "cp_lse_ag_out_rs";
    case CpOp::ar: return "cp_lse_ag_out_ar";
    case CpOp::a2a: return "cp_lse_a2a_merge";
  }
  throw Error("op", "rs, ar or a2a", std::to_string(static_cast<int>(op)));
}

const char* cp_path_name(CpPath path) {
  switch (path) {
    case CpPath::automatic: return "auto";
    case CpPath::collectives: return "collectives";
    case CpPath::direct: return "direct";
  }
  throw Error("path", "auto, collectives or direct", std::to_string(static_cast<int>(path)));
}

CpPlan cp_plan(CpOp op, const TensorView& out, Communicator& comm, const CpOptions& o) {
  if (o.path == CpPath::collectives) return {CpPath::collectives, "the collectives were asked for"};
  std::string why;
  if (comm.size() == 1) why = "one rank: nothing to exchange";
  else if (why = comm.direct_unavailable(out.device); why.empty() && out.device.type != DeviceType::cuda)
    why = "data on the CPU";
  if (o.path == CpPath::direct) return {CpPath::direct, why};
  if (!why.empty()) return {CpPath::collectives, why};
  const size_t bytes = static_cast<size_t>(out.numel()) * out.element_size();
  if (bytes > direct_auto_max_bytes(op))
    return {CpPath::collectives, std::to_string(bytes >> 20) + " MiB per rank, past the " +
                                     std::to_string(direct_auto_max_bytes(op) >> 20) + " MiB up to which " +
                                     cp_op_name(op) + " is faster over the direct path"};
  return {CpPath::direct, ""};
}

namespace {

using detail::MergeArgs;
using detail::RowMap;
const char* op_name(CpOp op) { return cp_op_name(op); }

constexpr size_t align_up(size_t n, size_t a = 256) { return (n + a - 1) / a * a; }

// What every rank must agree on before any data collective.
struct Header {
  int32_t op = 0, ok = 1, size = 0, dtype = 0, lse_dtype = 0, base = 0, has_kv = 0, has_lse = 0, path = 0;
  int64_t B = 0, H = 0, D = 0;
  char error[160] = {};
  // the agreed-on part (all but ok and error), also the key for Communicator::agreed_calls
  std::string signature() const {
    const int64_t v[] = {op, size, dtype, lse_dtype, base, has_kv, has_lse, path, B, H, D};
    return std::string(reinterpret_cast<const char*>(v), sizeof(v));
  }
  bool same_call(const Header& o) const { return signature() == o.signature(); }
  std::string describe() const {
    std::ostringstream s;
    s << dtype_name(static_cast<DType>(dtype)) << "[" << B << ", " << H << ", " << D << "] lse "
      << dtype_name(static_cast<DType>(lse_dtype)) << (base ? " base 2" : " base e") << (has_kv ? " kv_lens" : "")
      << (has_lse ? " out_lse" : "") << " path " << cp_path_name(static_cast<CpPath>(path));
    return s.str();
  }
};

struct Problem {
  CpOp op;
  int64_t N = 1, rank = 0, B = 0, H = 0, D = 0, Hn = 0;
  const TensorView* out;
  const TensorView* lse;
  const TensorView* result;
  const CpOptions* options;
  CpPath path = CpPath::collectives;  // the transport, as cp_plan chose it
};

Problem validate_locally(CpOp op, const TensorView& out, const TensorView& lse, Communicator& comm,
                         const TensorView& result, const CpOptions& o) {
  using namespace detail;
  Problem p{op, comm.size(), comm.rank(), 0, 0, 0, 0, &out, &lse, &result, &o};
  check_ndim(out, "out", 3, "[B, H, D]");
  check_dtype(out, "out", {DType::f32, DType::f16, DType::bf16});
  check_data(out, "out");
  p.B = out.shape[0], p.H = out.shape[1], p.D = out.shape[2];
  if (!comm.accepts(out.device))
    throw Error("out", "a tensor on the device " + comm.name() + " communicates (" + comm.name() + ")",
                out.describe());
  check_ndim(lse, "lse", 2, "[B, H]");
  check_dtype(lse, "lse", {DType::f32, DType::f16, DType::bf16});
  check_data(lse, "lse");
  check_device(lse, "lse", out.device);
  check_dim(lse, "lse", 0, p.B, "B, from out");
  check_dim(lse, "lse", 1, p.H, "H, from out");
  if (p.N < 1 || p.rank < 0 || p.rank >= p.N)
    throw Error("comm", "rank in [0, size) and size >= 1",
                "rank " + std::to_string(p.rank) + " of size " + std::to_string(p.N));
  if (op != CpOp::ar && p.H % p.N != 0)
    throw Error("out", "a head count H divisible by the group size " + std::to_string(p.N), out.describe());
  p.Hn = op == CpOp::ar ? p.H : p.H / p.N;
  check_ndim(result, "result", 3, op == CpOp::ar ? "[B, H, D]" : "[B, H/N, D]");
  check_device(result, "result", out.device);
  if (result.dtype != out.dtype)
    throw Error("result", std::string("dtype ") + dtype_name(out.dtype) + " (that of out)", result.describe());
  check_dim(result, "result", 0, p.B, "B");
  check_dim(result, "result", 1, p.Hn, op == CpOp::ar ? "H" : "H/N");
  check_dim(result, "result", 2, p.D, "D");
  check_data(result, "result");
  check_contiguous(result, "result");
  check_no_overlap(result, "result", lse, "lse", false);
  check_no_overlap(result, "result", out, "out", op == CpOp::ar);
  if (o.kv_lens) {
    check_ndim(*o.kv_lens, "kv_lens", 1, "[B]");
    check_dtype(*o.kv_lens, "kv_lens", {DType::i32, DType::i64});
    check_dim(*o.kv_lens, "kv_lens", 0, p.B, "B");
    check_device(*o.kv_lens, "kv_lens", out.device);
    check_data(*o.kv_lens, "kv_lens");
  }
  if (o.out_lse) {
    const TensorView& l = *o.out_lse;
    check_ndim(l, "out_lse", 2, op == CpOp::ar ? "[B, H]" : "[B, H/N]");
    check_dtype(l, "out_lse", {DType::f32, DType::f16, DType::bf16});
    check_device(l, "out_lse", out.device);
    check_dim(l, "out_lse", 0, p.B, "B");
    check_dim(l, "out_lse", 1, p.Hn, op == CpOp::ar ? "H" : "H/N");
    check_data(l, "out_lse");
    check_writable(l, "out_lse");
    check_no_overlap(l, "out_lse", result, "result", false);
    check_no_overlap(l, "out_lse", out, "out", false);
    check_no_overlap(l, "out_lse", lse, "lse", false);
  }
  if (p.N > 1) {
    const CpPlan plan = cp_plan(op, out, comm, o);
    if (plan.path == CpPath::direct && !plan.reason.empty())
      throw Error("path", "a communicator and data the direct transport runs on", plan.reason);
    p.path = plan.path;
  }
  return p;
}

// Validates locally, then (as o.check_consistency says) makes every rank agree: a local
// error or a mismatch between ranks throws on every rank, so no rank is left waiting in a
// collective.
Problem validate(CpOp op, const TensorView& out, const TensorView& lse, Communicator& comm,
                 const TensorView& result, const CpOptions& o) {
  if (o.check_consistency == ConsistencyCheck::off) return validate_locally(op, out, lse, comm, result, o);
  Header mine;
  mine.op = static_cast<int32_t>(op);
  mine.size = comm.size();
  Problem p{};
  std::exception_ptr local_error;
  try {
    p = validate_locally(op, out, lse, comm, result, o);
    mine.dtype = static_cast<int32_t>(out.dtype);
    mine.lse_dtype = static_cast<int32_t>(lse.dtype);
    mine.base = o.lse_base == LseBase::two;
    mine.has_kv = o.kv_lens != nullptr;
    mine.has_lse = o.out_lse != nullptr;
    mine.path = static_cast<int32_t>(p.path);
    mine.B = p.B, mine.H = p.H, mine.D = p.D;
  } catch (const std::exception& e) {
    local_error = std::current_exception();
    mine.ok = 0;
    std::strncpy(mine.error, e.what(), sizeof(mine.error) - 1);
  }
  // an invalid call always joins the exchange, so that the other ranks raise too
  const bool once = o.check_consistency == ConsistencyCheck::first_call;
  if (once && !local_error && comm.agreed_calls().count(mine.signature())) return p;
  std::vector<Header> all(static_cast<size_t>(std::max(comm.size(), 1)));
  comm.all_gather_host(&mine, all.data(), sizeof(Header));
  if (local_error) std::rethrow_exception(local_error);
  for (size_t r = 0; r < all.size(); ++r) {
    if (!all[r].ok)
      throw Error("arguments on rank " + std::to_string(r), std::string("valid arguments on every rank of ") + op_name(op),
                  std::string(all[r].error));
  }
  for (size_t r = 1; r < all.size(); ++r) {
    if (!all[r].same_call(all[0]))
      throw Error("arguments across ranks", std::string("the same op, shapes, dtypes and options on every rank of ") + op_name(op),
                  "rank 0: " + all[0].describe() + "; rank " + std::to_string(r) + ": " + all[r].describe());
  }
  if (once) comm.agreed_calls().insert(mine.signature());
  return p;
}

// Workspace carving: consecutive 256-byte aligned sections.
struct Carver {
  char* base;
  size_t used = 0;
  void* take(size_t bytes) {
    void* p = base + used;
    used += align_up(bytes);
    return p;
  }
};

MergeArgs base_args(const Problem& p) {
  MergeArgs a;
  a.device = p.out->device;
  a.dtype = p.out->dtype;
  a.base2 = p.options->lse_base == LseBase::two;
  a.B = p.B;
  a.H = p.H;
  a.D = p.D;
  return a;
}

// The local lse, sanitised and masked by kv_lens, as f32 into `dst` with row map `rows`.
// Expressed as a merge of one partial with D = 0.
MergeArgs mask_lse_args(const Problem& p, void* dst, RowMap rows) {
  MergeArgs a = base_args(p);
  a.N = 1;
  a.D = 0;
  a.lses = p.lse->data;
  a.lse_dtype = p.lse->dtype;
  a.lse_sn = 0, a.lse_sb = p.lse->strides[0], a.lse_sh = p.lse->strides[1];
  a.dst_lse = dst;
  a.dst_lse_dtype = DType::f32;
  a.dst_lse_rows = rows;
  a.lse_h_begin = 0, a.lse_h_end = p.H;
  if (p.options->kv_lens) {
    a.kv_lens = p.options->kv_lens->data;
    a.kv_dtype = p.options->kv_lens->dtype;
    a.kv_sn = 0, a.kv_sb = p.options->kv_lens->strides[0];
  }
  a.src_rows = a.dst_rows = RowMap{0, 0, 0, std::max<int64_t>(p.H, 1)};
  return a;
}

void set_out_lse(MergeArgs& a, const Problem& p, int64_t h_begin) {
  if (!p.options->out_lse) return;
  const TensorView& l = *p.options->out_lse;
  a.dst_lse = l.data;
  a.dst_lse_dtype = l.dtype;
  a.dst_lse_rows = RowMap{l.strides[0], l.strides[1], 0, std::max<int64_t>(l.shape[1], 1)};
  a.lse_h_begin = h_begin;
  a.lse_h_end = h_begin + l.shape[1];
}

// World size 1: the input, untouched (a weight-1 copy), and the masked lse if asked for.
void single_rank(const Problem& p, Context& ctx) {
  const size_t lse_bytes = static_cast<size_t>(p.B * p.H) * 4;
  void* zeros = ctx.workspace(align_up(lse_bytes));
  detail::run_zero(zeros, lse_bytes, ctx);  // f32 zeros: weight exp(0 - 0) = 1, an exact copy
  if (p.result->data != p.out->data) {
    MergeArgs a = base_args(p);
    a.N = 1;
    a.src = p.out->data;
    a.src_rows = RowMap{p.out->strides[0], p.out->strides[1], 0, std::max<int64_t>(p.H, 1)};
    a.src_sd = p.out->strides[2];
    a.lses = zeros;
    a.lse_sn = 0, a.lse_sb = p.H, a.lse_sh = 1;
    a.dst = p.result->data;
    a.dst_rows = RowMap{p.H * p.D, p.D, 0, std::max<int64_t>(p.H, 1)};
    detail::run_merge(a, ctx);
  }
  if (p.options->out_lse) {
    MergeArgs m = mask_lse_args(p, nullptr, {});
    set_out_lse(m, p, 0);
    m.dst_lse_dtype = p.options->out_lse->dtype;
    detail::run_merge(m, ctx);
  }
}

void ag_then_reduce(const Problem& p, Communicator& comm, Context& ctx) {
  const size_t esize = p.out->element_size();
  const size_t lse_count = static_cast<size_t>(p.B * p.H);
  const size_t data_count = static_cast<size_t>(p.B * p.H * p.D);
  const bool rs = p.op == CpOp::rs;
  const size_t need = align_up(lse_count * 4) * (1 + static_cast<size_t>(p.N)) + (rs ? align_up(data_count * esize) : 0);
  Carver ws{static_cast<char*>(ctx.workspace(need))};
  void* lse_send = ws.take(lse_count * 4);
  void* lse_all = ws.take(lse_count * 4 * static_cast<size_t>(p.N));
  void* corrected = rs ? ws.take(data_count * esize) : p.result->data;

  detail::run_merge(mask_lse_args(p, lse_send, RowMap{p.H, 1, 0, std::max<int64_t>(p.H, 1)}), ctx);
  comm.all_gather(lse_send, lse_all, lse_count, DType::f32, ctx);

  MergeArgs c = base_args(p);
  c.N = p.N;
  c.rank = p.rank;
  c.src = p.out->data;
  c.src_rows = RowMap{p.out->strides[0], p.out->strides[1], 0, std::max<int64_t>(p.H, 1)};
  c.src_sd = p.out->strides[2];
  c.lses = lse_all;
  c.lse_dtype = DType::f32;
  c.lse_sn = p.B * p.H, c.lse_sb = p.H, c.lse_sh = 1;
  c.dst = corrected;
  // rs: head h = dest * Hn + j lands in block dest of [N, B, Hn, D], ready to scatter
  c.dst_rows = rs ? RowMap{p.Hn * p.D, p.D, p.B * p.Hn * p.D, std::max<int64_t>(p.Hn, 1)}
                  : RowMap{p.H * p.D, p.D, 0, std::max<int64_t>(p.H, 1)};
  set_out_lse(c, p, rs ? p.rank * p.Hn : 0);
  detail::run_merge(c, ctx);

  if (rs) comm.reduce_scatter(corrected, p.result->data, static_cast<size_t>(p.B * p.Hn * p.D), p.out->dtype, ctx);
  else comm.all_reduce(p.result->data, p.result->data, data_count, p.out->dtype, ctx);
}

void a2a_merge(const Problem& p, Communicator& comm, Context& ctx) {
  const size_t esize = p.out->element_size();
  const size_t rows = static_cast<size_t>(p.B * p.Hn);
  const size_t data_bytes = align_up(rows * static_cast<size_t>(p.D) * esize, 16);
  const size_t chunk = data_bytes + align_up(rows * 4, 16);
  const auto N = static_cast<size_t>(p.N);
  Carver ws{static_cast<char*>(ctx.workspace(2 * align_up(chunk * N)))};
  char* send = static_cast<char*>(ws.take(chunk * N));
  char* recv = static_cast<char*>(ws.take(chunk * N));
  const auto chunk_elems = static_cast<int64_t>(chunk / esize), chunk_f32 = static_cast<int64_t>(chunk / 4);
  const int64_t hn = std::max<int64_t>(p.Hn, 1);

  MergeArgs pack = mask_lse_args(p, send + data_bytes, RowMap{p.Hn, 1, chunk_f32, hn});
  pack.D = p.D;
  pack.src = p.out->data;
  pack.src_rows = RowMap{p.out->strides[0], p.out->strides[1], 0, std::max<int64_t>(p.H, 1)};
  pack.src_sd = p.out->strides[2];
  pack.dst = send;
  pack.dst_rows = RowMap{p.Hn * p.D, p.D, chunk_elems, hn};
  detail::run_merge(pack, ctx);

  comm.all_to_all(send, recv, chunk, DType::u8, ctx);

  MergeArgs m = base_args(p);
  m.N = p.N;
  m.H = p.Hn;
  m.src = recv;
  m.src_sn = chunk_elems;
  m.src_rows = RowMap{p.Hn * p.D, p.D, 0, hn};
  m.lses = recv + data_bytes;
  m.lse_dtype = DType::f32;
  m.lse_sn = chunk_f32, m.lse_sb = p.Hn, m.lse_sh = 1;
  m.dst = p.result->data;
  m.dst_rows = RowMap{p.Hn * p.D, p.D, 0, hn};
  set_out_lse(m, p, 0);
  detail::run_merge(m, ctx);
}

// The whole call in one kernel over the communicator's symmetric buffers.
void direct(const Problem& p, Communicator& comm, Context& ctx) {
  detail::DirectArgs a;
  a.op = p.op;
  a.N = static_cast<int>(p.N);
  a.rank = static_cast<int>(p.rank);
  a.B = p.B, a.H = p.H, a.D = p.D, a.kept = p.Hn;
  a.base2 = p.options->lse_base == LseBase::two;
  a.dtype = p.out->dtype;
  a.device = p.out->device;
  a.out = p.out->data;
  a.out_sb = p.out->strides[0], a.out_sh = p.out->strides[1], a.out_sd = p.out->strides[2];
  a.lse = p.lse->data;
  a.lse_dtype = p.lse->dtype;
  a.lse_sb = p.lse->strides[0], a.lse_sh = p.lse->strides[1];
  if (const TensorView* kv = p.options->kv_lens) {
    a.kv_lens = kv->data;
    a.kv_dtype = kv->dtype;
    a.kv_sb = kv->strides[0];
  }
  a.result = p.result->data;
  if (const TensorView* l = p.options->out_lse) {
    a.out_lse = l->data;
    a.out_lse_dtype = l->dtype;
    a.out_lse_sb = l->strides[0], a.out_lse_sh = l->strides[1];
  }
  a.slot_bytes = detail::direct_slot_bytes(p.B * p.Hn, p.D, p.out->element_size());
  a.buffers = comm.symmetric_buffers(detail::direct_buffer_bytes(a.N, a.slot_bytes), ctx);
  detail::run_cp_direct(a, ctx);
}

void run(CpOp op, const TensorView& out, const TensorView& lse, Communicator& comm, const TensorView& result,
         const CpOptions& o, Context* ctx_in) {
  const Problem p = validate(op, out, lse, comm, result, o);
  Context& ctx = detail::resolve_context(ctx_in, out.device);
  if (p.N == 1) return single_rank(p, ctx);
  if (p.B == 0 || p.H == 0) return;  // nothing to exchange, on every rank alike
  if (p.path == CpPath::direct) direct(p, comm, ctx);
  else if (op == CpOp::a2a) a2a_merge(p, comm, ctx);
  else ag_then_reduce(p, comm, ctx);
}

}  // namespace

void cp_combine(CpOp op, const TensorView& out, const TensorView& lse, Communicator& comm, const TensorView& result,
                const CpOptions& options, Context* ctx) {
  run(op, out, lse, comm, result, options, ctx);
}

void cp_lse_ag_out_rs(const TensorView& out, const TensorView& lse, Communicator& comm, const TensorView& result,
                      const CpOptions& options, Context* ctx) {
  run(CpOp::rs, out, lse, comm, result, options, ctx);
}
void cp_lse_ag_out_ar(const TensorView& out, const TensorView& lse, Communicator& comm, const TensorView& result,
                      const CpOptions& options, Context* ctx) {
  run(CpOp::ar, out, lse, comm, result, options, ctx);
}
void cp_lse_a2a_merge(const TensorView& out, const TensorView& lse, Communicator& comm, const TensorView& result,
                      const CpOptions& options, Context* ctx) {
  run(CpOp::a2a, out, lse, comm, result, options, ctx);
}

}  // namespace cpattn
