#include <gtest/gtest.h>

#include <random>

#include "backend/fast_div.hpp"

namespace cpattn::detail {
namespace {

// Every divisor the kernels use (H, heads per rank) is < 2^31, and so is every numerator.
TEST(FastDiv, MatchesDivisionOverTheWholeRange) {
  std::mt19937 rng(7);
  std::uniform_int_distribution<uint32_t> any(0, (1u << 31) - 1);
  std::vector<uint32_t> divisors = {1, 2, 3, 5, 7, 12, 16, 96, 128, 1000, 65535, 65536, 65537,
                                    (1u << 30) + 1, (1u << 31) - 1};
  for (int i = 0; i < 200; ++i) divisors.push_back(std::max<uint32_t>(1, any(rng) >> (i % 31)));
  for (uint32_t d : divisors) {
    const FastDiv f(d);
    std::vector<uint32_t> ns = {0, 1, d - 1, d, d + 1, 2 * d - 1, (1u << 31) - 1, (1u << 31) - 2};
    for (int i = 0; i < 2000; ++i) ns.push_back(any(rng));
    for (uint32_t n : ns) {
      if (n >= (1u << 31)) continue;
      ASSERT_EQ(f.div(n), n / d) << n << " / " << d;
    }
  }
}

}  // namespace
}  // namespace cpattn::detail
