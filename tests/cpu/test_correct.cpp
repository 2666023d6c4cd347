#include "merge_matrix.hpp"

namespace cpattn::testing {
namespace {

class CpuCorrect : public ::testing::TestWithParam<MergeCase> {};

TEST_P(CpuCorrect, InPlaceMatchesFloat64Reference) { EXPECT_TRUE(check_correct(GetParam(), Device::cpu(), true)); }
TEST_P(CpuCorrect, OutOfPlaceMatchesFloat64Reference) { EXPECT_TRUE(check_correct(GetParam(), Device::cpu(), false)); }

INSTANTIATE_TEST_SUITE_P(Matrix, CpuCorrect, ::testing::ValuesIn(merge_matrix()));

TEST(CpuCorrectSemantics, SeedExample) {
  // two ranks with lses (0, 0): each output is halved, global lse = log 2
  std::vector<float> out = {2.0f, 4.0f};
  std::vector<float> lses = {0.0f, 0.0f};
  std::vector<float> lse(1);
  TensorView o(out.data(), DType::f32, {1, 1, 2}), l(lse.data(), DType::f32, {1, 1});
  correct_attn_out(o, TensorView(lses.data(), DType::f32, {2, 1, 1}), 1, o, &l);
  EXPECT_FLOAT_EQ(out[0], 1.0f);
  EXPECT_FLOAT_EQ(out[1], 2.0f);
  EXPECT_FLOAT_EQ(lse[0], std::log(2.0f));
}

TEST(CpuCorrectSemantics, KvLensMaskBeatsGarbageLse) {
  // rank 0's shard is empty (kv_len 0) although its lse says 9: its output becomes exact 0
  std::vector<float> out = {NAN, 3.0f};
  std::vector<float> lses = {9.0f, 1.0f};
  std::vector<int32_t> kv = {0, 5};
  std::vector<float> res(2, 7.0f), lse(1);
  TensorView k(kv.data(), DType::i32, {2, 1}), l(lse.data(), DType::f32, {1, 1});
  MergeOptions o;
  o.kv_lens = &k;
  correct_attn_out(TensorView(out.data(), DType::f32, {1, 1, 2}), TensorView(lses.data(), DType::f32, {2, 1, 1}), 0,
                   TensorView(res.data(), DType::f32, {1, 1, 2}), &l, o);
  EXPECT_EQ(res[0], 0.0f);
  EXPECT_EQ(res[1], 0.0f);
  EXPECT_FLOAT_EQ(lse[0], 1.0f);
}

}  // namespace
}  // namespace cpattn::testing
