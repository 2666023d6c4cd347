#include "cp_check.hpp"

#include <cmath>
#include <sstream>

namespace cpattn::testing {

std::string run_cp_case(const CpCase& c, Communicator& comm, Device device, const reference::CpAttention& p) {
  const int64_t r = comm.rank(), N = comm.size();
  const int64_t Hn = c.op == CpOp::ar ? c.H : c.H / N;
  const double ln2 = std::log(2.0), nan = std::nan("");
  TestTensor out(c.dtype, {c.B, c.H, c.D}, device, Layout::padded), lse(DType::f32, {c.B, c.H}, device);
  TestTensor kv(DType::i32, {c.B}, device);
  const auto& part = p.partial[static_cast<size_t>(r)];
  for (int64_t b = 0; b < c.B; ++b) {
    const bool empty = p.shard_len[static_cast<size_t>(r)][b] == 0;
    kv.set({b}, static_cast<double>(p.shard_len[static_cast<size_t>(r)][b]));
    for (int64_t h = 0; h < c.H; ++h) {
      double l = part.lse[b * c.H + h];
      if (empty) l = c.use_kv_lens ? 3.0 : -INFINITY;  // kv_lens path: a finite garbage lse
      lse.set({b, h}, c.base == LseBase::two ? l / ln2 : l);
      for (int64_t d = 0; d < c.D; ++d) out.set({b, h, d}, empty ? nan : part.out[(b * c.H + h) * c.D + d]);
    }
  }
  out.upload();
  lse.upload();
  kv.upload();
  TestTensor result(c.dtype, {c.B, Hn, c.D}, device), out_lse(DType::f32, {c.B, Hn}, device);
  result.poison();
  out_lse.poison();
  const TensorView kv_view = kv.view(), lse_view = out_lse.view();
  CpOptions o;
  o.lse_base = c.base;
  o.path = c.path;
  if (c.use_kv_lens) o.kv_lens = &kv_view;
  if (c.return_lse) o.out_lse = &lse_view;
  Context ctx(device);
  cp_combine(c.op, out.view(), lse.view(), comm, result.view(), o, &ctx);
  result.download();
  out_lse.download();

  const int64_t h0 = c.op == CpOp::ar || N == 1 ? 0 : r * Hn;
  double max_ref = 1e-30;
  for (double v : p.full.out) max_ref = std::max(max_ref, std::fabs(v));
  // rs/ar over the collectives round each corrected partial to the dtype before the sum: up
  // to N + 1 roundings; a2a and the direct path merge in f32 and round once
  const bool one_rounding = c.op == CpOp::a2a || cp_plan(c.op, out.view(), comm, o).path == CpPath::direct;
  const double tol = tolerance(c.dtype) * (one_rounding ? 2.0 : static_cast<double>(N + 1));
  std::ostringstream err;
  int64_t wrong = 0;
  for (int64_t b = 0; b < c.B; ++b)
    for (int64_t j = 0; j < Hn; ++j) {
      const int64_t h = h0 + j;
      if (c.return_lse && N > 1) {
        double got = out_lse.get({b, j});
        if (c.base == LseBase::two) got *= ln2;
        const double ref = p.full.lse[b * c.H + h];
        const bool ok = std::isinf(ref) ? got == ref : std::fabs(got - ref) <= 1e-4 * std::max(1.0, std::fabs(ref));
        if (!ok && wrong++ == 0) err << "lse[" << b << "," << j << "] = " << got << " ref " << ref;
      }
      for (int64_t d = 0; d < c.D; ++d) {
        const double got = result.get({b, j, d});
        double ref = p.full.out[(b * c.H + h) * c.D + d];
        const bool ok = std::isnan(ref) ? std::isnan(got) : std::fabs(got - ref) <= tol * (max_ref + std::fabs(ref));
        if (!ok && wrong++ == 0) err << "result[" << b << "," << j << "," << d << "] = " << got << " ref " << ref;
      }
    }
  if (!wrong) return "";
  std::ostringstream msg;
  msg << cp_op_name(c.op) << " " << cp_path_name(c.path) << " " << dtype_name(c.dtype) << " rank " << r << "/" << N << " B" << c.B << " H" << c.H << " D"
      << c.D << (c.use_kv_lens ? " kv_lens" : "") << (c.base == LseBase::two ? " base2" : "") << ": " << wrong
      << " wrong; first " << err.str();
  return msg.str();
}

}  // namespace cpattn::testing
