// cp_lse_ag_out_rs / cp_lse_ag_out_ar / cp_lse_a2a_merge, written once against
// Communicator. Two transports: the direct one (one kernel over the communicator's
// symmetric buffers, src/cuda/cp_direct.cu) where cp_plan picks it, else the collectives,
// where every data step is the merge/correct row kernel with a different row map (the
// arguments of each step come from cp_args.cpp):
//   mask   : lse -> f32 send buffer (kv_lens applied)          merge, N = 1, D = 0
//   correct: out -> [N, B, H/N, D] reduce-scatter layout        correct, split row map
//   pack   : out + lse -> per-destination all-to-all chunks     merge, N = 1 (weight 1, exact)
//   merge  : N received chunks -> result                        merge, strided views
#include <algorithm>

#include "cp_args.hpp"
#include "cpattn/cp.hpp"
#include "cpattn/error.hpp"
#include "route.hpp"

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

using detail::CpCall;
using detail::RowMap;

constexpr size_t align_up(size_t n, size_t a = 256) { return (n + a - 1) / a * a; }

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

// World size 1: the input, untouched (a weight-1 copy), and the masked lse if asked for.
// One rank: the merge of its one partial, as at any world size: non-empty rows copied
// exactly (weight exp(l - l) = 1), empty ones (kv_lens 0, lse -inf/NaN/+inf) zero, in place
// too.
void single_rank(const CpCall& p, Context& ctx) { detail::run_merge(detail::make_cp_single_rank_args(p), ctx); }

void ag_then_reduce(const CpCall& p, Communicator& comm, Context& ctx) {
  const size_t esize = p.out->element_size();
  const size_t lse_count = static_cast<size_t>(p.B * p.H);
  const size_t data_count = static_cast<size_t>(p.B * p.H * p.D);
  const bool rs = p.op == CpOp::rs;
  const size_t need = align_up(lse_count * 4) * (1 + static_cast<size_t>(p.N)) + (rs ? align_up(data_count * esize) : 0);
  Carver ws{static_cast<char*>(ctx.workspace(need))};
  void* lse_send = ws.take(lse_count * 4);
  void* lse_all = ws.take(lse_count * 4 * static_cast<size_t>(p.N));
  void* corrected = rs ? ws.take(data_count * esize) : p.result->data;

  detail::run_merge(detail::make_cp_mask_args(p, lse_send, RowMap{p.H, 1, 0, std::max<int64_t>(p.H, 1)}), ctx);
  comm.all_gather(lse_send, lse_all, lse_count, DType::f32, ctx);
  detail::run_merge(detail::make_cp_correct_args(p, lse_all, corrected), ctx);

  if (rs) comm.reduce_scatter(corrected, p.result->data, static_cast<size_t>(p.B * p.kept * p.D), p.out->dtype, ctx);
  else comm.all_reduce(p.result->data, p.result->data, data_count, p.out->dtype, ctx);
}

void a2a_merge(const CpCall& p, Communicator& comm, Context& ctx) {
  const size_t esize = p.out->element_size();
  const size_t rows = static_cast<size_t>(p.B * p.kept);
  const size_t data_bytes = align_up(rows * static_cast<size_t>(p.D) * esize, 16);
  const size_t chunk = data_bytes + align_up(rows * 4, 16);
  const auto N = static_cast<size_t>(p.N);
  Carver ws{static_cast<char*>(ctx.workspace(2 * align_up(chunk * N)))};
  char* send = static_cast<char*>(ws.take(chunk * N));
  char* recv = static_cast<char*>(ws.take(chunk * N));
  detail::run_merge(detail::make_cp_pack_args(p, send, data_bytes, chunk), ctx);
  comm.all_to_all(send, recv, chunk, DType::u8, ctx);
  detail::run_merge(detail::make_cp_merge_args(p, recv, data_bytes, chunk), ctx);
}

// The whole call in one kernel over the communicator's symmetric buffers.
void direct(const CpCall& p, Communicator& comm, Context& ctx) {
  detail::DirectArgs a = detail::make_cp_direct_args(p);
  a.buffers = comm.symmetric_buffers(detail::direct_buffer_bytes(a.N, a.slot_bytes), ctx);
  detail::run_cp_direct(a, ctx);
}

void run(CpOp op, const TensorView& out, const TensorView& lse, Communicator& comm, const TensorView& result,
         const CpOptions& o, Context* ctx_in) {
  const CpCall p = detail::validate_cp_call(op, out, lse, comm, result, o);
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
