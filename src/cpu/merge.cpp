// merge_attn_states / correct_attn_out on the CPU: OpenMP over (b, h) rows, a vectorisable
// loop over D per partial.
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

float partial_lse(const MergeArgs& a, int64_t r, int64_t b, int64_t h) {
  float l = load_float(a.lses, a.lse_dtype, r * a.lse_sn + b * a.lse_sb + h * a.lse_sh);
  if (std::isnan(l) || l == -kNegInf) l = kNegInf;
  if (a.kv_lens && detail::load_index(a.kv_lens, a.kv_dtype, r * a.kv_sn + b * a.kv_sb) == 0) l = kNegInf;
  return l;
}

float ex(float x, bool base2) { return base2 ? std::exp2(x) : std::exp(x); }

// Sanitised lses of row (b, h) into l[0..N); returns the merged lse.
float merged_lse(const MergeArgs& a, int64_t b, int64_t h, float* l) {
  float m = kNegInf;
  for (int64_t r = 0; r < a.N; ++r) m = std::max(m, l[r] = partial_lse(a, r, b, h));
  if (m == kNegInf) return kNegInf;
  float sum = 0.0f;
  for (int64_t r = 0; r < a.N; ++r) sum += ex(l[r] - m, a.base2);
  return m + (a.base2 ? std::log2(sum) : std::log(sum));
}

template <class E>
void merge_typed(const MergeArgs& a) {
  using S = typename E::Storage;
  const auto* src = static_cast<const S*>(a.src);
  auto* dst = static_cast<S*>(a.dst);
  const int64_t rows = a.B * a.H;
  const bool unit_d = a.src_sd == 1 && a.dst_sd == 1;
  const bool correct = a.rank >= 0;
#pragma omp parallel
  {
    std::vector<float> l(static_cast<size_t>(std::max<int64_t>(a.N, 1)));
    std::vector<float> acc(static_cast<size_t>(std::max<int64_t>(a.D, 1)));
    float* accp = acc.data();
#pragma omp for schedule(static)
    for (int64_t row = 0; row < rows; ++row) {
      const int64_t b = row / a.H, h = row % a.H;
      const float lse = merged_lse(a, b, h, l.data());
      if (a.dst_lse && h >= a.lse_h_begin && h < a.lse_h_end)
        store_float(a.dst_lse, a.dst_lse_dtype, detail::row_offset(a.dst_lse_rows, b, h - a.lse_h_begin), lse);
      const S* x = src + detail::row_offset(a.src_rows, b, h);
      S* out = dst + detail::row_offset(a.dst_rows, b, h);
      if (correct) {  // one fused pass: the only weight is the rank's
        const float w = lse == kNegInf ? 0.0f : ex(l[a.rank] - lse, a.base2);
        if (w == 0.0f) {  // an empty partial gives exact zeros, even over NaN data
          for (int64_t d = 0; d < a.D; ++d) out[d * a.dst_sd] = E::store(0.0f);
        } else if (unit_d) {
#pragma omp simd
          for (int64_t d = 0; d < a.D; ++d) out[d] = E::store(w * E::load(x[d]));
        } else {
          for (int64_t d = 0; d < a.D; ++d) out[d * a.dst_sd] = E::store(w * E::load(x[d * a.src_sd]));
        }
        continue;
      }
      std::fill(accp, accp + a.D, 0.0f);
      for (int64_t r = 0; r < a.N; ++r) {
        const float w = lse == kNegInf ? 0.0f : ex(l[r] - lse, a.base2);
        if (w == 0.0f) continue;  // an empty partial adds exact zeros, even over NaN data
        const S* xr = x + r * a.src_sn;
        if (unit_d) {
#pragma omp simd
          for (int64_t d = 0; d < a.D; ++d) accp[d] += w * E::load(xr[d]);
        } else {
          for (int64_t d = 0; d < a.D; ++d) accp[d] += w * E::load(xr[d * a.src_sd]);
        }
      }
      if (unit_d) {
#pragma omp simd
        for (int64_t d = 0; d < a.D; ++d) out[d] = E::store(accp[d]);
      } else {
        for (int64_t d = 0; d < a.D; ++d) out[d * a.dst_sd] = E::store(accp[d]);
      }
    }
  }
}

}  // namespace

void merge(const MergeArgs& a) {
  if (a.B == 0 || a.H == 0) return;
  dispatch_float(a.dtype, [&](auto tag) { merge_typed<decltype(tag)>(a); });
}

void sum_buffers(const void* const* srcs, int n, void* dst, size_t count, DType dtype) {
  dispatch_float(dtype, [&](auto tag) {
    using E = decltype(tag);
    using S = typename E::Storage;
    const auto total = static_cast<int64_t>(count);
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < total; ++i) {
      float s = 0.0f;
      for (int r = 0; r < n; ++r) s += E::load(static_cast<const S*>(srcs[r])[i]);
      static_cast<S*>(dst)[i] = E::store(s);
    }
  });
}

}  // namespace cpattn::cpu
