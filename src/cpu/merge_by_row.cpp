// The CPU merges the tiled kernel (merge_kernel.inc) does not take: a variable number of
// partials per row (merge_attn_states_varlen, offsets) and fp8 output. One row (b, h) at a
// time, OpenMP over rows: each row's partial lses, their max and sum, then the weighted sum
// of the partials over D in f32, rounded once to the output.
#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "backend.hpp"
#include "elements.hpp"

namespace cpattn::cpu {
namespace {

using detail::MergeArgs;
constexpr float kNegInf = -std::numeric_limits<float>::infinity();

// Row b's partials: [first, first + count) of outs' dim 0.
struct Partials {
  int64_t first = 0, count = 0;
};
Partials partials_of(const MergeArgs& a, int64_t b) {
  if (!a.offsets) return {0, a.N};
  const int64_t begin = detail::load_index(a.offsets, a.offsets_dtype, b * a.offsets_stride);
  const int64_t end = detail::load_index(a.offsets, a.offsets_dtype, (b + 1) * a.offsets_stride);
  return {begin, end - begin};  // checked by make_varlen_merge_args
}

template <class E>
void merge_rows_typed(const MergeArgs& a) {
  using S = typename E::Storage;
  const auto* src = static_cast<const S*>(a.src);
  const int64_t rows = a.B * a.H;
  const bool base_two = a.lse_base == LseBase::two;
  const float scale = a.out_scale ? *a.out_scale : 1.0f;
#pragma omp parallel if (rows * a.D * (a.offsets ? a.N / std::max<int64_t>(a.B, 1) + 1 : a.N + 1) >= kParallelMinElements)
  {
    std::vector<float> l, acc(static_cast<size_t>(std::max<int64_t>(a.D, 1)));
#pragma omp for schedule(static)
    for (int64_t row = 0; row < rows; ++row) {
      const int64_t b = row / a.H, h = row % a.H;
      const Partials p = partials_of(a, b);
      l.resize(static_cast<size_t>(p.count));
      float m = kNegInf;
      for (int64_t r = 0; r < p.count; ++r) {
        const int64_t n = p.first + r;
        float v = load_float(a.lses, a.lse_dtype, n * a.lse_sn + b * a.lse_sb + h * a.lse_sh);
        if (std::isnan(v) || v == -kNegInf) v = kNegInf;
        if (a.kv_lens && detail::load_index(a.kv_lens, a.kv_dtype, n * a.kv_sn + b * a.kv_sb) == 0) v = kNegInf;
        l[static_cast<size_t>(r)] = v;
        m = std::max(m, v);
      }
      float s = 0.0f;
      if (m != kNegInf)
        for (float v : l) s += base_two ? std::exp2(v - m) : std::exp(v - m);
      const float lse = m == kNegInf ? kNegInf : m + (base_two ? std::log2(s) : std::log(s));
      if (a.dst_lse && h >= a.lse_h_begin && h < a.lse_h_end)
        store_float(a.dst_lse, a.dst_lse_dtype, detail::row_offset(a.dst_lse_rows, b, h - a.lse_h_begin), lse);
      std::fill(acc.begin(), acc.end(), 0.0f);
      const S* x = src + detail::row_offset(a.src_rows, b, h);
      for (int64_t r = 0; r < p.count && m != kNegInf; ++r) {
        const float v = l[static_cast<size_t>(r)];
        const float w = base_two ? std::exp2(v - lse) : std::exp(v - lse);
        if (w == 0.0f) continue;  // an empty partial adds exact zeros, even over NaN data
        const S* xr = x + (p.first + r) * a.src_sn;
        for (int64_t d = 0; d < a.D; ++d) acc[static_cast<size_t>(d)] += w * E::load(xr[d * a.src_sd]);
      }
      const int64_t out = detail::row_offset(a.dst_rows, b, h);
      if (a.out_scale) {
        auto* dst = static_cast<uint8_t*>(a.dst) + out;
        for (int64_t d = 0; d < a.D; ++d)
          dst[d * a.dst_sd] = detail::f32_to_e4m3_saturating(acc[static_cast<size_t>(d)] / scale);
      } else {
        S* dst = static_cast<S*>(a.dst) + out;
        for (int64_t d = 0; d < a.D; ++d) dst[d * a.dst_sd] = E::store(acc[static_cast<size_t>(d)]);
      }
    }
  }
}

}  // namespace

void merge_by_row(const MergeArgs& a) {
  detail::check_element_dtypes(a);
  CPATTN_DISPATCH_CPU_FLOAT(a.dtype, "dtype", E, [&] { merge_rows_typed<E>(a); });
}

}  // namespace cpattn::cpu
