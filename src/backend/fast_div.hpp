#pragma once
// n / d for 0 <= n < 2^31 and 1 <= d < 2^31 by a multiply-high, an add and a shift
// (Granlund & Montgomery, "Division by invariant integers using multiplication", 1994):
// a few instructions where a 32-bit division is ~20 and a 64-bit one a long subroutine.
// Built on the host, used by the CUDA kernels; the host form exists for the tests.
#include <cstdint>

#if defined(__CUDACC__)
#define CPATTN_HOST_DEVICE __host__ __device__
#else
#define CPATTN_HOST_DEVICE
#endif

namespace cpattn::detail {

struct FastDiv {
  uint32_t divisor = 1, multiplier = 0, shift = 0;

  FastDiv() = default;
  explicit FastDiv(uint32_t d) : divisor(d) {
    while ((uint64_t{1} << shift) < d) ++shift;  // shift = ceil(log2 d)
    multiplier = static_cast<uint32_t>(((uint64_t{1} << 32) * ((uint64_t{1} << shift) - d)) / d + 1);
  }

  CPATTN_HOST_DEVICE uint32_t div(uint32_t n) const {
#if defined(__CUDA_ARCH__)
    return (__umulhi(n, multiplier) + n) >> shift;
#else
    return static_cast<uint32_t>(((static_cast<uint64_t>(n) * multiplier >> 32) + n) >> shift);
#endif
  }
};

}  // namespace cpattn::detail
