// CPATTN_DISPATCH_FLOAT and the element-dtype checks of the backend contract: the type is
// bound per dtype, and any other dtype raises instead of being read as f32.
#include <gtest/gtest.h>

#include <cstdint>

#include "backend/args.hpp"
#include "backend/dtype_dispatch.hpp"

namespace cpattn::detail {
namespace {

size_t bound_size(DType dtype) {
  return CPATTN_DISPATCH_FLOAT(dtype, "dtype", float, uint16_t, int16_t, T, [] { return sizeof(T); });
}

TEST(DtypeDispatch, BindsTheTypeOfEachFloatDtype) {
  EXPECT_EQ(bound_size(DType::f32), sizeof(float));
  EXPECT_EQ(bound_size(DType::f16), sizeof(uint16_t));
  EXPECT_EQ(bound_size(DType::bf16), sizeof(int16_t));
}

TEST(DtypeDispatch, RaisesOnEveryOtherDtype) {
  for (DType d : {DType::f64, DType::fp8_e4m3, DType::fp8_e5m2, DType::i64, DType::i32, DType::i16, DType::i8, DType::u8}) {
    try {
      bound_size(d);
      ADD_FAILURE() << dtype_name(d) << " was dispatched";
    } catch (const Error& e) {
      EXPECT_EQ(std::string(e.what()), std::string("cpattn: invalid dtype: expected f32, f16 or bf16, got ") + dtype_name(d));
    }
  }
}

TEST(DtypeDispatch, ElementDtypesOfMergeArgsAreChecked) {
  MergeArgs a;
  EXPECT_NO_THROW(check_element_dtypes(a));
  a.lse_dtype = DType::f64;
  EXPECT_THROW(check_element_dtypes(a), Error);
  a.lse_dtype = DType::bf16;
  int32_t kv = 1;
  a.kv_lens = &kv;
  a.kv_dtype = DType::i16;
  EXPECT_THROW(check_element_dtypes(a), Error);
  a.kv_dtype = DType::i64;
  EXPECT_NO_THROW(check_element_dtypes(a));
}

}  // namespace
}  // namespace cpattn::detail
