// CPU merge/correct entry point: runs the kernels built for the best instruction set this
// CPU has (checked once), and the LocalComm reduction.
#if CPATTN_CPU_AVX2
#include <cpuid.h>
#endif
#include <algorithm>
#include <vector>

#include "backend.hpp"
#include "elements.hpp"

namespace cpattn::cpu {

namespace base {
void merge(const detail::MergeArgs& args);
}
#if CPATTN_CPU_AVX2
namespace avx2 {
void merge(const detail::MergeArgs& args);
}
namespace avx512 {
void merge(const detail::MergeArgs& args);
}
#endif

#if CPATTN_CPU_AVX2
// CPUID leaf 1, ECX bit 29: clang before 16 rejects __builtin_cpu_supports("f16c")
bool has_f16c() {
  unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
  return __get_cpuid(1, &eax, &ebx, &ecx, &edx) && (ecx & bit_F16C);
}
#endif

void merge(const detail::MergeArgs& a) {
  if (a.offsets || a.out_scale) return merge_by_row(a);
#if CPATTN_CPU_AVX2
  static const bool has_avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && has_f16c();
  static const bool has_avx512 = has_avx2 && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw");
  if (has_avx512) return avx512::merge(a);
  if (has_avx2) return avx2::merge(a);
#endif
  base::merge(a);
}

namespace {
template <class E>
void sum_typed(const void* const* srcs, int n, void* dst, size_t count) {
  using S = typename E::Storage;
  const auto total = static_cast<int64_t>(count);
#pragma omp parallel for schedule(static) if (total * n >= kParallelMinElements)
  for (int64_t i = 0; i < total; ++i) {
    float s = 0.0f;
    for (int r = 0; r < n; ++r) s += E::load(static_cast<const S*>(srcs[r])[i]);
    static_cast<S*>(dst)[i] = E::store(s);
  }
}
}  // namespace

void sum_buffers(const void* const* srcs, int n, void* dst, size_t count, DType dtype) {
  CPATTN_DISPATCH_CPU_FLOAT(dtype, "dtype", E, [&] { sum_typed<E>(srcs, n, dst, count); });
}

}  // namespace cpattn::cpu
