#include <gtest/gtest.h>

#include <cmath>
#include <vector>
#include <cstring>

#include "backend/convert.hpp"
#include "core/validate.hpp"
#include "cpattn/cpattn.hpp"

namespace cpattn {
namespace {

TEST(DType, NamesAndParsing) {
  EXPECT_EQ(parse_dtype("bfloat16"), DType::bf16);
  EXPECT_EQ(parse_dtype("FP32"), DType::f32);
  EXPECT_EQ(parse_dtype("float8_e4m3fn"), DType::fp8_e4m3);
  EXPECT_EQ(dtype_size(DType::fp8_e5m2), 1u);
  EXPECT_STREQ(dtype_name(DType::i64), "i64");
  try {
    parse_dtype("float128");
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.argument(), "dtype");
    EXPECT_NE(std::string(e.what()).find("float128"), std::string::npos);
  }
}

TEST(TensorView, ContiguousStridesAndDescribe) {
  float x[24];
  TensorView t(x, DType::f32, {2, 3, 4});
  EXPECT_EQ(t.numel(), 24);
  EXPECT_EQ(t.stride(0), 12);
  EXPECT_EQ(t.stride(-1), 1);
  EXPECT_TRUE(t.is_contiguous());
  const int64_t shape[] = {2, 3}, strides[] = {1, 2};
  TensorView s(x, DType::f32, shape, strides);
  EXPECT_FALSE(s.is_contiguous());
  EXPECT_EQ(s.describe(), "f32[2, 3] strides (1, 2) on cpu");
}

TEST(Convert, Bf16RoundTripsEveryValue) {
  for (uint32_t h = 0; h < 65536; ++h) {
    const float f = detail::bf16_to_f32(static_cast<uint16_t>(h));
    if (std::isnan(f)) {
      EXPECT_TRUE(std::isnan(detail::bf16_to_f32(detail::f32_to_bf16(f))));
      continue;
    }
    ASSERT_EQ(detail::f32_to_bf16(f), h) << h;
  }
}

TEST(Convert, F16RoundTripsEveryValue) {
  for (uint32_t h = 0; h < 65536; ++h) {
    const float f = detail::f16_to_f32(static_cast<uint16_t>(h));
    if (std::isnan(f)) continue;
    ASSERT_EQ(detail::f32_to_f16(f), h) << h;
  }
}

TEST(Convert, RoundToNearestEven) {
  // 1 + 2^-8 is halfway between two bf16 values: ties to even (1.0)
  EXPECT_EQ(detail::f32_to_bf16(1.0f + std::ldexp(1.0f, -8)), detail::f32_to_bf16(1.0f));
  EXPECT_EQ(detail::f32_to_bf16(1.0f + 3 * std::ldexp(1.0f, -8)), 0x3f82);
  // f16: 1 + 2^-11 ties to 1.0, 65520 overflows to inf, 2^-25 rounds to 0, 3*2^-25 to 2^-24
  EXPECT_EQ(detail::f32_to_f16(1.0f + std::ldexp(1.0f, -11)), 0x3c00);
  EXPECT_EQ(detail::f32_to_f16(65520.0f), 0x7c00);
  EXPECT_EQ(detail::f32_to_f16(65504.0f), 0x7bff);
  EXPECT_EQ(detail::f32_to_f16(std::ldexp(1.0f, -25)), 0);
  EXPECT_EQ(detail::f32_to_f16(3 * std::ldexp(1.0f, -25)), 2);
}

TEST(Convert, Fp8RoundTripsEveryValue) {
  for (bool e4m3 : {true, false})
    for (int c = 0; c < 256; ++c) {
      const float f = detail::fp8_to_f32(static_cast<uint8_t>(c), e4m3);
      if (std::isnan(f)) continue;
      if (f == 0.0f && std::signbit(f) && c == 0) continue;
      ASSERT_EQ(detail::f32_to_fp8(f, e4m3), c) << c << (e4m3 ? " e4m3" : " e5m2");
    }
  EXPECT_EQ(detail::fp8_to_f32(0x7e, true), 448.0f);
  EXPECT_TRUE(std::isnan(detail::fp8_to_f32(detail::f32_to_fp8(-INFINITY, true), true)));  // torch: inf -> NaN
  EXPECT_EQ(detail::fp8_to_f32(detail::f32_to_fp8(-INFINITY, false), false), -INFINITY);
}

// The merges' fp8 store: the same code as the exhaustive-search conversion wherever that one
// does not saturate, including every tie between neighbours (RNE) and the subnormals; past
// 448 and at inf the largest finite value instead of NaN.
TEST(Convert, E4m3SaturatingMatchesTheSearchAndSaturates) {
  std::vector<float> values;
  for (int c = 0; c < 0x7f; ++c) {
    const float v = detail::fp8_to_f32(static_cast<uint8_t>(c), true), next = detail::fp8_to_f32(static_cast<uint8_t>(c + 1), true);
    values.push_back(v);
    if (c + 1 < 0x7f) {
      values.push_back((v + next) / 2);  // the tie
      values.push_back(std::nextafter((v + next) / 2, 0.0f));
      values.push_back(std::nextafter((v + next) / 2, 1000.0f));
    }
  }
  for (float v : values)
    for (float f : {v, -v}) {
      if (std::fabs(f) > 448.0f) continue;
      ASSERT_EQ(detail::f32_to_e4m3_saturating(f), detail::f32_to_fp8(f, true)) << f;
    }
  for (float f : {448.0f, 463.9f, 464.0f, 1e6f, INFINITY}) {
    EXPECT_EQ(detail::f32_to_e4m3_saturating(f), 0x7e) << f;
    EXPECT_EQ(detail::f32_to_e4m3_saturating(-f), 0xfe) << f;
  }
  EXPECT_EQ(detail::f32_to_e4m3_saturating(NAN) & 0x7f, 0x7f);
  EXPECT_EQ(detail::f32_to_e4m3_saturating(std::ldexp(1.0f, -10)), 0);  // a tie at the bottom: even (0)
  EXPECT_EQ(detail::f32_to_e4m3_saturating(std::ldexp(3.0f, -10)), 2);  // 1.5 steps: even (2)
}

TEST(PadValue, IntegersMustBeExact) {
  EXPECT_EQ(detail::pad_bits(-3.0, DType::i8) & 0xff, 0xfdu);
  EXPECT_THROW(detail::pad_bits(-INFINITY, DType::i32), Error);
  EXPECT_THROW(detail::pad_bits(0.5, DType::i64), Error);
  EXPECT_THROW(detail::pad_bits(256.0, DType::u8), Error);
  EXPECT_THROW(detail::pad_bits(-1.0, DType::u8), Error);
  EXPECT_EQ(detail::pad_bits(255.0, DType::u8), 255u);
  try {
    detail::pad_bits(-INFINITY, DType::i32);
  } catch (const Error& e) {
    EXPECT_EQ(e.argument(), "pad_value");
    EXPECT_NE(std::string(e.what()).find("i32"), std::string::npos);
  }
}

}  // namespace
}  // namespace cpattn
