#pragma once
// Vector loads/stores of VEC elements of T as f32, and runtime-dtype scalar access.
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cstdint>

#include "../backend/dtype_dispatch.hpp"
#include "cpattn/ops.hpp"
#include "cpattn/tensor.hpp"

// CPATTN_DISPATCH_FLOAT with the CUDA types of f32, f16 and bf16.
#define CPATTN_DISPATCH_CUDA_FLOAT(dtype, what, T, ...) \
  CPATTN_DISPATCH_FLOAT(dtype, what, float, __half, __nv_bfloat16, T, __VA_ARGS__)

namespace cpattn::cuda {

template <class T> __device__ __forceinline__ float to_f32(T v);
template <> __device__ __forceinline__ float to_f32<float>(float v) { return v; }
template <> __device__ __forceinline__ float to_f32<__half>(__half v) { return __half2float(v); }
template <> __device__ __forceinline__ float to_f32<__nv_bfloat16>(__nv_bfloat16 v) { return __bfloat162float(v); }

template <class T> __device__ __forceinline__ T from_f32(float v);
template <> __device__ __forceinline__ float from_f32<float>(float v) { return v; }
template <> __device__ __forceinline__ __half from_f32<__half>(float v) { return __float2half_rn(v); }
template <> __device__ __forceinline__ __nv_bfloat16 from_f32<__nv_bfloat16>(float v) { return __float2bfloat16_rn(v); }

// The f32 value of a raw 16-bit pattern of a half type.
template <class T> __device__ __forceinline__ float from_bits16(uint32_t b);
template <> __device__ __forceinline__ float from_bits16<__half>(uint32_t b) {
  return __half2float(__ushort_as_half(static_cast<unsigned short>(b)));
}
template <> __device__ __forceinline__ float from_bits16<__nv_bfloat16>(uint32_t b) { return __uint_as_float(b << 16); }

// VEC consecutive elements: 16 bytes held as one uint4 on the vector path, one T on the
// scalar path (VEC == 1). The vector path never copies T arrays: nvcc splits a copy of
// __half / __nv_bfloat16 elements into one 2-byte access each, which caps in-place kernels
// at two thirds of copy bandwidth. Stores go through __stwb (st.global.wb.v4, the default
// cache policy): a plain uint4/float4 assignment here was also split, into 4-byte stores.
template <class T, int VEC>
struct Pack {
  static_assert(sizeof(T) * VEC == 16, "the vector path moves 16 bytes");
  uint4 w;
  __device__ __forceinline__ float get(int i) const {  // i is a compile-time constant after unrolling
    const uint32_t word = (&w.x)[i * static_cast<int>(sizeof(T)) / 4];
    if constexpr (sizeof(T) == 4) {
      return __uint_as_float(word);
    } else {
      return from_bits16<T>(i & 1 ? word >> 16 : word & 0xffffu);
    }
  }
};
template <class T>
struct Pack<T, 1> {
  T v;
  __device__ __forceinline__ float get(int) const { return to_f32(v); }
};

template <class T, int VEC>
__device__ __forceinline__ Pack<T, VEC> load_pack(const T* p) {
  if constexpr (VEC == 1) {
    return {*p};
  } else {
    return {*reinterpret_cast<const uint4*>(p)};
  }
}

template <class T, int VEC>
__device__ __forceinline__ void load_f32(const T* p, float (&out)[VEC]) {
  const Pack<T, VEC> pk = load_pack<T, VEC>(p);
#pragma unroll
  for (int i = 0; i < VEC; ++i) out[i] = pk.get(i);
}

// Two f32 values rounded to nearest into one word of two 16-bit elements (one conversion
// instruction for the pair where the hardware has it).
template <class T> __device__ __forceinline__ uint32_t pair_bits(float lo, float hi);
template <> __device__ __forceinline__ uint32_t pair_bits<__half>(float lo, float hi) {
  const __half2 h = __floats2half2_rn(lo, hi);
  return *reinterpret_cast<const uint32_t*>(&h);
}
template <> __device__ __forceinline__ uint32_t pair_bits<__nv_bfloat16>(float lo, float hi) {
  const __nv_bfloat162 h = __floats2bfloat162_rn(lo, hi);
  return *reinterpret_cast<const uint32_t*>(&h);
}

template <class T, int VEC>
__device__ __forceinline__ void store_f32(T* p, const float (&in)[VEC]) {
  if constexpr (VEC == 1) {
    *p = from_f32<T>(in[0]);
  } else if constexpr (sizeof(T) == 4) {
    __stwb(reinterpret_cast<float4*>(p), make_float4(in[0], in[1], in[2], in[3]));
  } else {
    const auto pair = [&](int i) { return pair_bits<T>(in[2 * i], in[2 * i + 1]); };
    __stwb(reinterpret_cast<uint4*>(p), make_uint4(pair(0), pair(1), pair(2), pair(3)));
  }
}

// The vector, or zeros where `zero` holds: a partial of weight 0 may hold NaN or inf, and
// 0 * NaN is NaN; zeroing the (at most four) words once costs less than a select per element.
template <class T, int VEC>
__device__ __forceinline__ Pack<T, VEC> zeroed_if(bool zero, const Pack<T, VEC>& x) {
  Pack<T, VEC> r = x;
  if constexpr (VEC == 1) {
    if (zero) r.v = from_f32<T>(0.0f);
  } else {
    r.w = zero ? make_uint4(0, 0, 0, 0) : x.w;
  }
  return r;
}

// Stores w * x for the VEC elements of a packed vector, an exact 0 where w is 0 (an empty
// partial's data may be NaN or inf).
template <class T, int VEC>
__device__ __forceinline__ void scale_store(T* p, float w, const Pack<T, VEC>& x) {
  const Pack<T, VEC> xs = zeroed_if<T, VEC>(w == 0.0f, x);
  float y[VEC];
#pragma unroll
  for (int j = 0; j < VEC; ++j) y[j] = w * xs.get(j);
  store_f32<T, VEC>(p, y);
}

// A partial's lse as the merges read it: NaN and +inf mark an empty partial, as -inf does.
__device__ __forceinline__ float sanitized_lse(float l) { return l != l || l == INFINITY ? -INFINITY : l; }

// exp and log in the lses' base: 2 (lse_base_two: log2 units, as FlashInfer's) or e.
// exp is the hardware's ex2.approx (of x * log2(e) in base e): 2 instructions where expf's
// range reduction takes ~10, and merges with many partials were bound by them (up to 15%
// faster at N = 16). Its error is relative to the weight and grows with |x| (about
// |x| * 2^-24), so it is largest on weights of e^-x that barely count: every merged value and
// lse stays within a few f32 ulps (the tests' f32 tolerance is 2e-5 relative).
__device__ __forceinline__ float lse_exp(float x, bool lse_base_two) { return lse_base_two ? exp2f(x) : __expf(x); }
__device__ __forceinline__ float lse_log(float x, bool lse_base_two) { return lse_base_two ? log2f(x) : logf(x); }
__device__ __forceinline__ float lse_exp(float x, LseBase base) { return lse_exp(x, base != LseBase::e); }
__device__ __forceinline__ float lse_log(float x, LseBase base) { return lse_log(x, base != LseBase::e); }

// The same without a branch on the base, for kernels whose launcher passes the base as two
// factors: exp(x) = 2^(x * to_log2) and log(s) = log2(s) * from_log2 (base e: log2(e) and
// ln(2); base 2: both 1). 2^x is ex2.approx.ftz: __expf's instruction without its fix-up for
// results under 2^-126, which as weights are zeros to f32 next to the largest weight, 1.
struct LseScales {
  float to_log2, from_log2;
};
inline LseScales lse_scales(bool lse_base_two) {
  return lse_base_two ? LseScales{1.0f, 1.0f} : LseScales{1.4426950408889634f, 0.6931471805599453f};
}
__device__ __forceinline__ float exp2_ftz(float x) {
  float y;
  asm("ex2.approx.ftz.f32 %0, %1;" : "=f"(y) : "f"(x));
  return y;
}

// Runtime-dtype access (lses and their outputs): f16, bf16, else f32; the launchers check the
// dtypes first (check_element_dtypes).
__device__ __forceinline__ float load_float(const void* p, DType dt, int64_t off) {
  switch (dt) {
    case DType::f16: return __half2float(static_cast<const __half*>(p)[off]);
    case DType::bf16: return __bfloat162float(static_cast<const __nv_bfloat16*>(p)[off]);
    default: return static_cast<const float*>(p)[off];
  }
}
__device__ __forceinline__ void store_float(void* p, DType dt, int64_t off, float v) {
  switch (dt) {
    case DType::f16: static_cast<__half*>(p)[off] = __float2half_rn(v); break;
    case DType::bf16: static_cast<__nv_bfloat16*>(p)[off] = __float2bfloat16_rn(v); break;
    default: static_cast<float*>(p)[off] = v;
  }
}
__device__ __forceinline__ int64_t load_index(const void* p, DType dt, int64_t off) {
  return dt == DType::i64 ? static_cast<const int64_t*>(p)[off] : static_cast<const int32_t*>(p)[off];
}

}  // namespace cpattn::cuda
