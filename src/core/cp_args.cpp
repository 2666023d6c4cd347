#include "cp_args.hpp"

#include <algorithm>
#include <cstring>
#include <memory>
#include <sstream>
#include <unordered_set>
#include <vector>

#include "validate.hpp"

namespace cpattn::detail {

CpCall validate_cp_call_locally(CpOp op, const TensorView& out, const TensorView& lse, Communicator& comm,
                                const TensorView& result, const CpOptions& o) {
  CpCall p{op, comm.size(), comm.rank(), 0, 0, 0, 0, &out, &lse, &result, &o};
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
  p.kept = op == CpOp::ar ? p.H : p.H / p.N;
  check_ndim(result, "result", 3, op == CpOp::ar ? "[B, H, D]" : "[B, H/N, D]");
  check_device(result, "result", out.device);
  if (result.dtype != out.dtype)
    throw Error("result", std::string("dtype ") + dtype_name(out.dtype) + " (that of out)", result.describe());
  check_dim(result, "result", 0, p.B, "B");
  check_dim(result, "result", 1, p.kept, op == CpOp::ar ? "H" : "H/N");
  check_dim(result, "result", 2, p.D, "D");
  check_data(result, "result");
  check_contiguous(result, "result");
  check_no_overlap(result, "result", lse, "lse", false);
  check_no_overlap(result, "result", out, "out", op == CpOp::ar);
  if (o.kv_lens) check_kv_lens(*o.kv_lens, out.device, p.B);
  if (o.out_lse) {
    const TensorView& l = *o.out_lse;
    check_ndim(l, "out_lse", 2, op == CpOp::ar ? "[B, H]" : "[B, H/N]");
    check_dtype(l, "out_lse", {DType::f32, DType::f16, DType::bf16});
    check_device(l, "out_lse", out.device);
    check_dim(l, "out_lse", 0, p.B, "B");
    check_dim(l, "out_lse", 1, p.kept, op == CpOp::ar ? "H" : "H/N");
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

namespace {

// What every rank must agree on before any data collective.
struct Header {
  int32_t op = 0, ok = 1, size = 0, dtype = 0, lse_dtype = 0, lse_base = 0, has_kv = 0, has_lse = 0, path = 0;
  int64_t B = 0, H = 0, D = 0;
  char error[160] = {};
  // the agreed-on part (all but ok and error), also the key of AgreedCalls
  std::string signature() const {
    const int64_t v[] = {op, size, dtype, lse_dtype, lse_base, has_kv, has_lse, path, B, H, D};
    return std::string(reinterpret_cast<const char*>(v), sizeof(v));
  }
  bool same_call(const Header& o) const { return signature() == o.signature(); }
  std::string describe() const {
    std::ostringstream s;
    s << dtype_name(static_cast<DType>(dtype)) << "[" << B << ", " << H << ", " << D << "] lse "
      << dtype_name(static_cast<DType>(lse_dtype)) << (static_cast<LseBase>(lse_base) == LseBase::two ? " base 2" : " base e")
      << (has_kv ? " kv_lens" : "") << (has_lse ? " out_lse" : "") << " path " << cp_path_name(static_cast<CpPath>(path));
    return s.str();
  }
};

}  // namespace

// The signatures of the calls every rank of a communicator has agreed on: identical on every
// rank, since all fill it from the same exchanges.
struct AgreedCalls {
  std::unordered_set<std::string> signatures;
};
struct AgreedCallsOf {
  static std::unordered_set<std::string>& signatures(Communicator& comm) {
    if (!comm.agreed_calls_) comm.agreed_calls_ = std::make_shared<AgreedCalls>();
    return comm.agreed_calls_->signatures;
  }
};

CpCall validate_cp_call(CpOp op, const TensorView& out, const TensorView& lse, Communicator& comm,
                        const TensorView& result, const CpOptions& o) {
  if (o.check_consistency == ConsistencyCheck::off) return validate_cp_call_locally(op, out, lse, comm, result, o);
  Header mine;
  mine.op = static_cast<int32_t>(op);
  mine.size = comm.size();
  CpCall p{};
  std::exception_ptr local_error;
  try {
    p = validate_cp_call_locally(op, out, lse, comm, result, o);
    mine.dtype = static_cast<int32_t>(out.dtype);
    mine.lse_dtype = static_cast<int32_t>(lse.dtype);
    mine.lse_base = static_cast<int32_t>(o.lse_base);
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
  if (once && !local_error && AgreedCallsOf::signatures(comm).count(mine.signature())) return p;
  std::vector<Header> all(static_cast<size_t>(std::max(comm.size(), 1)));
  comm.all_gather_host(&mine, all.data(), sizeof(Header));
  if (local_error) std::rethrow_exception(local_error);
  for (size_t r = 0; r < all.size(); ++r) {
    if (!all[r].ok)
      throw Error("arguments on rank " + std::to_string(r), std::string("valid arguments on every rank of ") + cp_op_name(op),
                  std::string(all[r].error));
  }
  for (size_t r = 1; r < all.size(); ++r) {
    if (!all[r].same_call(all[0]))
      throw Error("arguments across ranks", std::string("the same op, shapes, dtypes and options on every rank of ") + cp_op_name(op),
                  "rank 0: " + all[0].describe() + "; rank " + std::to_string(r) + ": " + all[r].describe());
  }
  if (once) AgreedCallsOf::signatures(comm).insert(mine.signature());
  return p;
}

namespace {

// Rows (b, h) of a [B, H, ...] view.
RowMap rows_of(const TensorView& t, int64_t heads) { return RowMap{t.strides[0], t.strides[1], 0, std::max<int64_t>(heads, 1)}; }
// Rows of a dense [B, heads, D] buffer.
RowMap dense_rows(int64_t heads, int64_t D) { return RowMap{heads * D, D, 0, std::max<int64_t>(heads, 1)}; }

MergeArgs base_args(const CpCall& p) {
  MergeArgs a;
  a.device = p.out->device;
  a.dtype = p.out->dtype;
  a.lse_base = p.options->lse_base;
  a.B = p.B;
  a.H = p.H;
  a.D = p.D;
  return a;
}

// src = this rank's out [B, H, D]
void set_src_out(MergeArgs& a, const CpCall& p) {
  a.src = p.out->data;
  a.src_rows = rows_of(*p.out, p.H);
  a.src_sd = p.out->strides[2];
}

// The optional merged-lse output, for heads [h_begin, h_begin + kept).
void set_out_lse(MergeArgs& a, const CpCall& p, int64_t h_begin) {
  if (!p.options->out_lse) return;
  const TensorView& l = *p.options->out_lse;
  a.dst_lse = l.data;
  a.dst_lse_dtype = l.dtype;
  a.dst_lse_rows = rows_of(l, l.shape[1]);
  a.lse_h_begin = h_begin;
  a.lse_h_end = h_begin + l.shape[1];
}

}  // namespace

MergeArgs make_cp_mask_args(const CpCall& p, void* dst, RowMap rows) {
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

MergeArgs make_cp_single_rank_args(const CpCall& p) {
  MergeArgs a = make_cp_mask_args(p, nullptr, {});  // this rank's lse, masked by kv_lens
  a.D = p.D;
  set_src_out(a, p);
  a.dst = p.result->data;
  a.dst_rows = dense_rows(p.H, p.D);
  set_out_lse(a, p, 0);
  return a;
}

MergeArgs make_cp_correct_args(const CpCall& p, const void* gathered_lses, void* corrected) {
  const bool rs = p.op == CpOp::rs;
  MergeArgs a = base_args(p);
  a.N = p.N;
  a.rank = p.rank;
  set_src_out(a, p);
  a.lses = gathered_lses;
  a.lse_dtype = DType::f32;
  a.lse_sn = p.B * p.H, a.lse_sb = p.H, a.lse_sh = 1;
  a.dst = corrected;
  // rs: head h = dest * kept + j lands in block dest of [N, B, kept, D], ready to scatter
  a.dst_rows = rs ? RowMap{p.kept * p.D, p.D, p.B * p.kept * p.D, std::max<int64_t>(p.kept, 1)} : dense_rows(p.H, p.D);
  set_out_lse(a, p, rs ? p.rank * p.kept : 0);
  return a;
}

MergeArgs make_cp_pack_args(const CpCall& p, char* send, size_t data_bytes, size_t chunk_bytes) {
  const auto chunk_elems = static_cast<int64_t>(chunk_bytes / p.out->element_size());
  const auto chunk_f32 = static_cast<int64_t>(chunk_bytes / 4);
  const int64_t kept = std::max<int64_t>(p.kept, 1);
  MergeArgs a = make_cp_mask_args(p, send + data_bytes, RowMap{p.kept, 1, chunk_f32, kept});
  a.D = p.D;
  set_src_out(a, p);
  a.dst = send;
  a.dst_rows = RowMap{p.kept * p.D, p.D, chunk_elems, kept};
  return a;
}

MergeArgs make_cp_merge_args(const CpCall& p, const char* received, size_t data_bytes, size_t chunk_bytes) {
  MergeArgs a = base_args(p);
  a.N = p.N;
  a.H = p.kept;
  a.src = received;
  a.src_sn = static_cast<int64_t>(chunk_bytes / p.out->element_size());
  a.src_rows = dense_rows(p.kept, p.D);
  a.lses = received + data_bytes;
  a.lse_dtype = DType::f32;
  a.lse_sn = static_cast<int64_t>(chunk_bytes / 4), a.lse_sb = p.kept, a.lse_sh = 1;
  a.dst = p.result->data;
  a.dst_rows = dense_rows(p.kept, p.D);
  set_out_lse(a, p, 0);
  return a;
}

DirectArgs make_cp_direct_args(const CpCall& p) {
  DirectArgs a;
  a.op = p.op;
  a.N = static_cast<int>(p.N);
  a.rank = static_cast<int>(p.rank);
  a.B = p.B, a.H = p.H, a.D = p.D, a.kept = p.kept;
  a.lse_base = p.options->lse_base;
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
  a.slot_bytes = direct_slot_bytes(p.B * p.kept, p.D, p.out->element_size());
  return a;
}

}  // namespace cpattn::detail
