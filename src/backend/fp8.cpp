#include <cmath>

#include "convert.hpp"

namespace cpattn::detail {

float fp8_to_f32(uint8_t v, bool e4m3) {
  const int mant_bits = e4m3 ? 3 : 2, bias = e4m3 ? 7 : 15;
  const bool neg = v & 0x80;
  const int exp = (v & 0x7f) >> mant_bits, mant = v & ((1 << mant_bits) - 1);
  float r;
  if (e4m3 && (v & 0x7f) == 0x7f) return NAN;
  if (!e4m3 && exp == 0x1f) r = mant ? NAN : INFINITY;
  else if (exp == 0) r = std::ldexp(static_cast<float>(mant), 1 - bias - mant_bits);
  else r = std::ldexp(1.0f + static_cast<float>(mant) / (1 << mant_bits), exp - bias);
  return neg ? -r : r;
}

uint8_t f32_to_fp8(float f, bool e4m3) {
  // Exhaustive search over the 128 magnitudes: tiny, exact, and only used for pad values.
  const uint8_t sign = std::signbit(f) ? 0x80 : 0;
  const uint8_t nan = e4m3 ? 0x7f : 0x7e;
  if (std::isnan(f)) return sign | nan;
  const float a = std::fabs(f);
  const float max_finite = e4m3 ? 448.0f : 57344.0f;
  if (std::isinf(a) || a > max_finite) {
    // beyond the largest finite value: RNE would round up to the next (missing) step
    const float half_step = e4m3 ? 16.0f : 4096.0f;
    if (!std::isinf(a) && a < max_finite + half_step) return sign | (e4m3 ? 0x7e : 0x7b);
    return sign | (e4m3 ? nan : 0x7c);
  }
  uint8_t best = 0;
  float best_err = INFINITY;
  for (int c = 0; c < 0x80; ++c) {
    const float v = fp8_to_f32(static_cast<uint8_t>(c), e4m3);
    if (!std::isfinite(v)) continue;
    const float err = std::fabs(v - a);
    if (err < best_err || (err == best_err && (c & 1) == 0)) best = static_cast<uint8_t>(c), best_err = err;
  }
  return sign | best;
}

}  // namespace cpattn::detail
