#include "pack_matrix.hpp"

namespace cpattn::testing {
namespace {

class CpuPack : public ::testing::TestWithParam<PackCase> {};
TEST_P(CpuPack, MatchesReference) { EXPECT_TRUE(check_pack(GetParam(), Device::cpu())); }
INSTANTIATE_TEST_SUITE_P(Matrix, CpuPack, ::testing::ValuesIn(pack_matrix(false)));

class CpuUnpack : public ::testing::TestWithParam<PackCase> {};
TEST_P(CpuUnpack, MatchesReference) { EXPECT_TRUE(check_unpack(GetParam(), Device::cpu())); }
INSTANTIATE_TEST_SUITE_P(Matrix, CpuUnpack, ::testing::ValuesIn(pack_matrix(true)));

TEST(CpuPackSemantics, RoundTrip) {
  std::vector<float> x(10);
  for (int i = 0; i < 10; ++i) x[i] = static_cast<float>(i);
  std::vector<int64_t> lengths = {3, 0, 5, 2};
  std::vector<float> packed(4 * 5 * 1, 9.0f), back(10, -1.0f);
  TensorView len(lengths.data(), DType::i64, {4});
  pack_seq(TensorView(x.data(), DType::f32, {10, 1}), len, TensorView(packed.data(), DType::f32, {4, 5, 1}));
  EXPECT_EQ(packed[0 * 5 + 2], 2.0f);
  EXPECT_EQ(packed[0 * 5 + 3], -INFINITY);
  EXPECT_EQ(packed[1 * 5 + 0], -INFINITY);
  EXPECT_EQ(packed[2 * 5 + 4], 7.0f);
  unpack_seq(TensorView(packed.data(), DType::f32, {4, 5, 1}), len, TensorView(back.data(), DType::f32, {10, 1}));
  EXPECT_EQ(x, back);
}

TEST(CpuPackSemantics, LengthsAreCheckedOnTheHost) {
  std::vector<float> x(6), packed(3 * 4);
  std::vector<int32_t> negative = {2, -1, 5}, long_sum = {2, 1, 4}, too_long = {1, 1, 4};
  auto pack = [&](std::vector<int32_t>& l) {
    pack_seq(TensorView(x.data(), DType::f32, {6}), TensorView(l.data(), DType::i32, {3}),
             TensorView(packed.data(), DType::f32, {3, 4}));
  };
  EXPECT_THROW(pack(negative), Error);
  EXPECT_THROW(pack(long_sum), Error);  // a sum past T (a sum under T is a padded batch: valid)
  std::vector<float> out(6);
  std::vector<float> small(3 * 3);
  EXPECT_THROW(unpack_seq(TensorView(small.data(), DType::f32, {3, 3}), TensorView(too_long.data(), DType::i32, {3}),
                          TensorView(out.data(), DType::f32, {6})),
               Error);
  try {
    pack(negative);
  } catch (const Error& e) {
    EXPECT_EQ(e.argument(), "lengths");
    EXPECT_NE(std::string(e.what()).find("lengths[1] = -1"), std::string::npos) << e.what();
  }
}

TEST(CpuPackSemantics, SeqLengthStats) {
  std::vector<int32_t> l = {3, 0, 7, 2};
  auto s = seq_length_stats(TensorView(l.data(), DType::i32, {4}));
  EXPECT_EQ(s.batch, 4);
  EXPECT_EQ(s.max_len, 7);
  EXPECT_EQ(s.total, 12);
  std::vector<int64_t> cu = {0, 3, 3, 10, 12};
  auto c = seq_length_stats(TensorView(cu.data(), DType::i64, {5}), true);
  EXPECT_EQ(c.batch, 4);
  EXPECT_EQ(c.max_len, 7);
  EXPECT_EQ(c.total, 12);
  std::vector<int64_t> bad = {0, 3, 2};
  EXPECT_THROW(seq_length_stats(TensorView(bad.data(), DType::i64, {3}), true), Error);
}

}  // namespace
}  // namespace cpattn::testing
