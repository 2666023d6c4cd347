#include <cstring>

#include "merge_matrix.hpp"

namespace cpattn::testing {
namespace {

class CpuMerge : public ::testing::TestWithParam<MergeCase> {};

TEST_P(CpuMerge, MatchesFloat64Reference) { EXPECT_TRUE(check_merge(GetParam(), Device::cpu())); }

INSTANTIATE_TEST_SUITE_P(Matrix, CpuMerge, ::testing::ValuesIn(merge_matrix()));

class CpuMergeVarlen : public ::testing::TestWithParam<VarlenCase> {};
TEST_P(CpuMergeVarlen, MatchesFloat64Reference) { EXPECT_TRUE(check_merge_varlen(GetParam(), Device::cpu())); }
INSTANTIATE_TEST_SUITE_P(Matrix, CpuMergeVarlen, ::testing::ValuesIn(varlen_matrix()));

class CpuMergeFp8 : public ::testing::TestWithParam<std::pair<MergeCase, double>> {};
TEST_P(CpuMergeFp8, MatchesFloat64ReferenceScaledAndSaturated) {
  EXPECT_TRUE(check_merge_fp8(GetParam().first, Device::cpu(), GetParam().second));
}
INSTANTIATE_TEST_SUITE_P(Matrix, CpuMergeFp8, ::testing::ValuesIn(fp8_merge_matrix()));

TEST(CpuMergeSemantics, EmptyShardWithNaNDataContributesExactZeros) {
  // two partials, the second empty (-inf) and full of NaN: out must equal partial 0 exactly
  std::vector<float> outs = {1.5f, -2.0f, NAN, NAN};
  std::vector<float> lses = {0.3f, -INFINITY};
  std::vector<float> out(2, 7.0f), lse(1, 7.0f);
  TensorView o(out.data(), DType::f32, {1, 1, 2}), l(lse.data(), DType::f32, {1, 1});
  merge_attn_states(TensorView(outs.data(), DType::f32, {2, 1, 1, 2}), TensorView(lses.data(), DType::f32, {2, 1, 1}), o, &l);
  EXPECT_EQ(out[0], 1.5f);
  EXPECT_EQ(out[1], -2.0f);
  EXPECT_FLOAT_EQ(lse[0], 0.3f);
}

TEST(CpuMergeSemantics, AllEmptyGivesMinusInfAndZeros) {
  // vLLM's Triton function returns NaN for this lse; cpattn returns -inf and a zero output
  std::vector<float> outs = {NAN, 1.0f, 2.0f, INFINITY};
  std::vector<float> lses = {NAN, INFINITY};
  std::vector<float> out(2, 7.0f), lse(1, 7.0f);
  TensorView o(out.data(), DType::f32, {1, 1, 2}), l(lse.data(), DType::f32, {1, 1});
  merge_attn_states(TensorView(outs.data(), DType::f32, {2, 1, 1, 2}), TensorView(lses.data(), DType::f32, {2, 1, 1}), o, &l);
  EXPECT_EQ(out[0], 0.0f);
  EXPECT_EQ(out[1], 0.0f);
  EXPECT_EQ(lse[0], -INFINITY);
}

TEST(CpuMergeSemantics, BaseTwoMatchesBaseEOnScaledLses) {
  std::mt19937 rng(3);
  std::normal_distribution<float> n;
  const int N = 3, D = 5;
  std::vector<float> outs(N * D), lse_e(N), lse_2(N);
  for (auto& x : outs) x = n(rng);
  for (int r = 0; r < N; ++r) lse_e[r] = n(rng), lse_2[r] = lse_e[r] / std::log(2.0f);
  std::vector<float> out_e(D), out_2(D), l_e(1), l_2(1);
  TensorView le(l_e.data(), DType::f32, {1, 1}), l2(l_2.data(), DType::f32, {1, 1});
  merge_attn_states(TensorView(outs.data(), DType::f32, {N, 1, 1, D}), TensorView(lse_e.data(), DType::f32, {N, 1, 1}),
                    TensorView(out_e.data(), DType::f32, {1, 1, D}), &le);
  MergeOptions two;
  two.lse_base = LseBase::two;
  merge_attn_states(TensorView(outs.data(), DType::f32, {N, 1, 1, D}), TensorView(lse_2.data(), DType::f32, {N, 1, 1}),
                    TensorView(out_2.data(), DType::f32, {1, 1, D}), &l2, two);
  for (int d = 0; d < D; ++d) EXPECT_NEAR(out_e[d], out_2[d], 1e-5);
  EXPECT_NEAR(l_e[0] / std::log(2.0f), l_2[0], 1e-5);
}

TEST(CpuMergeSemantics, DeterministicRunToRun) {
  MergeCase c;
  c.N = 8, c.B = 64, c.H = 8, c.D = 128, c.dtype = DType::bf16;
  TestTensor outs(c.dtype, {c.N, c.B, c.H, c.D}), lses(DType::f32, {c.N, c.B, c.H});
  std::mt19937 rng(5);
  outs.fill_normal(rng);
  lses.fill_normal(rng, 4);
  TestTensor a(c.dtype, {c.B, c.H, c.D}), b(c.dtype, {c.B, c.H, c.D});
  merge_attn_states(outs.view(), lses.view(), a.view());
  merge_attn_states(outs.view(), lses.view(), b.view());
  EXPECT_EQ(0, std::memcmp(a.view().data, b.view().data, static_cast<size_t>(c.B * c.H * c.D * 2)));
}

}  // namespace
}  // namespace cpattn::testing
