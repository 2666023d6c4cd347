#pragma once
// From a runtime dtype to a compile-time type, failing loudly (FlashInfer's DISPATCH_* style):
//
//   CPATTN_DISPATCH_FLOAT(a.dtype, "dtype", float, __half, __nv_bfloat16, T, [&] { launch<T>(a); });
//
// runs the lambda with T bound to the backend's type for f32, f16 or bf16 (each backend
// names its own three), returns what the lambda returns, and throws cpattn::Error naming
// `what` for any other dtype: no switch falls through to f32. The checks below do the same
// for the dtypes a kernel reads element by element at run time (lses, kv_lens, lengths);
// each entry point makes them once per call.
#include "cpattn/error.hpp"
#include "cpattn/tensor.hpp"

namespace cpattn::detail {

[[noreturn]] inline void throw_unsupported_float_dtype(const char* what, DType dtype) {
  throw Error(what, "f32, f16 or bf16", dtype_name(dtype));
}
inline void check_float_dtype(DType dtype, const char* what) {
  if (dtype != DType::f32 && dtype != DType::f16 && dtype != DType::bf16) throw_unsupported_float_dtype(what, dtype);
}
inline void check_index_dtype(DType dtype, const char* what) {
  if (dtype != DType::i32 && dtype != DType::i64) throw Error(what, "i32 or i64", dtype_name(dtype));
}

}  // namespace cpattn::detail

#define CPATTN_DISPATCH_FLOAT(dtype, what, F32, F16, BF16, T, ...)          \
  [&]() -> decltype(auto) {                                                 \
    switch (dtype) {                                                        \
      case ::cpattn::DType::f32: {                                          \
        using T = F32;                                                      \
        return __VA_ARGS__();                                               \
      }                                                                     \
      case ::cpattn::DType::f16: {                                          \
        using T = F16;                                                      \
        return __VA_ARGS__();                                               \
      }                                                                     \
      case ::cpattn::DType::bf16: {                                         \
        using T = BF16;                                                     \
        return __VA_ARGS__();                                               \
      }                                                                     \
      default:                                                              \
        ::cpattn::detail::throw_unsupported_float_dtype(what, dtype);       \
    }                                                                       \
  }()
