// 64-bit sizes and bitwise repeatability on the CPU backend (tests/support/large_and_repeat).
#include "large_and_repeat.hpp"

namespace cpattn::testing {
namespace {

TEST(CpuLargeSizes, CorrectPast2To31Elements) { EXPECT_TRUE(correct_past_int32(Device::cpu())); }
TEST(CpuLargeSizes, PackUnpackPast2To31Bytes) { EXPECT_TRUE(pack_unpack_past_int32(Device::cpu())); }
TEST(CpuDeterminism, EveryOpBitwiseRepeatable) { EXPECT_TRUE(ops_bitwise_repeatable(Device::cpu())); }

}  // namespace
}  // namespace cpattn::testing
