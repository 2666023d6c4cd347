#pragma once
// Host-side scalar conversions between f32 and the 16/8-bit float formats, round to
// nearest even. Inline and branch-light so CPU loops over them vectorise.
#include <bit>
#include <cmath>
#include <cstdint>
#include <cstring>

namespace cpattn::detail {

inline uint32_t f32_bits(float f) { return std::bit_cast<uint32_t>(f); }
inline float bits_f32(uint32_t u) { return std::bit_cast<float>(u); }

inline float bf16_to_f32(uint16_t h) { return bits_f32(static_cast<uint32_t>(h) << 16); }
inline uint16_t f32_to_bf16(float f) {
  // branch-free (a select) so loops over it vectorise
  const uint32_t u = f32_bits(f);
  const uint32_t rounded = (u + 0x7fffu + ((u >> 16) & 1u)) >> 16;
  const uint32_t quiet_nan = (u >> 16) | 0x40u;
  return static_cast<uint16_t>((u & 0x7fffffffu) > 0x7f800000u ? quiet_nan : rounded);
}

inline float f16_to_f32(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  const uint32_t exp = (h >> 10) & 0x1fu, mant = h & 0x3ffu;
  if (exp == 0x1f) return bits_f32(sign | 0x7f800000u | (mant << 13));
  if (exp == 0) {  // zero or subnormal: mant * 2^-24
    const float v = static_cast<float>(mant) * 5.9604644775390625e-8f;
    return sign ? -v : v;
  }
  return bits_f32(sign | ((exp + 112u) << 23) | (mant << 13));
}
inline uint16_t f32_to_f16(float f) {
  const uint32_t u = f32_bits(f);
  const uint16_t sign = static_cast<uint16_t>((u >> 16) & 0x8000u);
  const uint32_t a = u & 0x7fffffffu;
  if (a > 0x7f800000u) return sign | 0x7e00u;            // NaN
  if (a >= 0x477ff000u) return sign | 0x7c00u;           // rounds to >= 65520: inf
  if (a < 0x38800000u) {                                 // below 2^-14: subnormal or zero
    // Adding 0.5 moves the value's bits to the f16 subnormal grid with the FPU's RNE.
    const float v = bits_f32(a) + 0.5f;
    return sign | static_cast<uint16_t>(f32_bits(v) - 0x3f000000u);
  }
  uint32_t r = a + 0xfffu + ((a >> 13) & 1u);
  return sign | static_cast<uint16_t>((r - 0x38000000u) >> 13);
}

// f32 -> fp8 e4m3fn, round to nearest even, saturating: finite values past 448 and inf become
// +-448, NaN stays NaN (as CUDA's __nv_cvt_float_to_fp8 with __NV_SATFINITE). The merges' fp8
// output.
inline uint8_t f32_to_e4m3_saturating(float f) {
  const uint32_t u = f32_bits(f);
  const auto sign = static_cast<uint8_t>((u >> 24) & 0x80u);
  const uint32_t a = u & 0x7fffffffu;
  if (a > 0x7f800000u) return sign | 0x7fu;   // NaN
  if (a >= 0x43e00000u) return sign | 0x7eu;  // >= 448: the largest finite
  if (a < 0x3c800000u) {                      // below 2^-6: the subnormal grid, steps of 2^-9
    // 16384 has an ulp of 2^-9: the FPU's addition rounds |f| onto the grid (RNE)
    return sign | static_cast<uint8_t>(f32_bits(bits_f32(a) + 16384.0f) - f32_bits(16384.0f));
  }
  const uint32_t r = a + 0x7ffffu + ((a >> 20) & 1u);  // RNE to 3 mantissa bits
  return sign | static_cast<uint8_t>((r - (120u << 23)) >> 20);  // rebias 127 -> 7
}

// fp8 (OCP): e4m3fn has no inf (0x7f is NaN, max 448); e5m2 is IEEE-like (max 57344).
float fp8_to_f32(uint8_t v, bool e4m3);
// Saturation follows torch's cast: out-of-range finite values and inf become NaN for
// e4m3fn, inf for e5m2.
uint8_t f32_to_fp8(float f, bool e4m3);

}  // namespace cpattn::detail
