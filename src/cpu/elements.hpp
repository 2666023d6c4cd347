#pragma once
// Typed element access for the CPU kernels: storage type and f32 conversions per dtype.
#include <cmath>
#include <cstdint>

#include "../backend/convert.hpp"
#include "../backend/dtype_dispatch.hpp"
#include "cpattn/tensor.hpp"

namespace cpattn::cpu {

struct F32 {
  using Storage = float;
  static float load(float v) { return v; }
  static float store(float v) { return v; }
};
struct F16 {
  using Storage = uint16_t;
  static float load(uint16_t v) { return detail::f16_to_f32(v); }
  static uint16_t store(float v) { return detail::f32_to_f16(v); }
};
struct BF16 {
  using Storage = uint16_t;
  static float load(uint16_t v) { return detail::bf16_to_f32(v); }
  static uint16_t store(float v) { return detail::f32_to_bf16(v); }
};

// CPATTN_DISPATCH_FLOAT with the CPU's element types of f32, f16 and bf16 (F32, F16, BF16).
#define CPATTN_DISPATCH_CPU_FLOAT(dtype, what, E, ...) \
  CPATTN_DISPATCH_FLOAT(dtype, what, ::cpattn::cpu::F32, ::cpattn::cpu::F16, ::cpattn::cpu::BF16, E, __VA_ARGS__)

// Runtime-dtype access (lses and their outputs): f16, bf16, else f32; the entry points check
// the dtypes first (check_element_dtypes).
inline float load_float(const void* p, DType dt, int64_t off) {
  switch (dt) {
    case DType::f16: return F16::load(static_cast<const uint16_t*>(p)[off]);
    case DType::bf16: return BF16::load(static_cast<const uint16_t*>(p)[off]);
    default: return static_cast<const float*>(p)[off];
  }
}
inline void store_float(void* p, DType dt, int64_t off, float v) {
  switch (dt) {
    case DType::f16: static_cast<uint16_t*>(p)[off] = F16::store(v); break;
    case DType::bf16: static_cast<uint16_t*>(p)[off] = BF16::store(v); break;
    default: static_cast<float*>(p)[off] = v;
  }
}

}  // namespace cpattn::cpu
