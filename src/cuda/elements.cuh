#pragma once
// Vector loads/stores of VEC elements of T as f32, and runtime-dtype scalar access.
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cstdint>

#include "cpattn/tensor.hpp"

namespace cpattn::cuda {

template <class T> __device__ __forceinline__ float to_f32(T v);
template <> __device__ __forceinline__ float to_f32<float>(float v) { return v; }
template <> __device__ __forceinline__ float to_f32<__half>(__half v) { return __half2float(v); }
template <> __device__ __forceinline__ float to_f32<__nv_bfloat16>(__nv_bfloat16 v) { return __bfloat162float(v); }

template <class T> __device__ __forceinline__ T from_f32(float v);
template <> __device__ __forceinline__ float from_f32<float>(float v) { return v; }
template <> __device__ __forceinline__ __half from_f32<__half>(float v) { return __float2half_rn(v); }
template <> __device__ __forceinline__ __nv_bfloat16 from_f32<__nv_bfloat16>(float v) { return __float2bfloat16_rn(v); }

// VEC consecutive elements; VEC * sizeof(T) is 16 on the vector path, sizeof(T) otherwise.
template <class T, int VEC>
struct alignas(sizeof(T) * VEC) Pack {
  T v[VEC];
};

template <class T, int VEC>
__device__ __forceinline__ void load_f32(const T* p, float (&out)[VEC]) {
  const Pack<T, VEC> pk = *reinterpret_cast<const Pack<T, VEC>*>(p);
#pragma unroll
  for (int i = 0; i < VEC; ++i) out[i] = to_f32(pk.v[i]);
}

template <class T, int VEC>
__device__ __forceinline__ void store_f32(T* p, const float (&in)[VEC]) {
  Pack<T, VEC> pk;
#pragma unroll
  for (int i = 0; i < VEC; ++i) pk.v[i] = from_f32<T>(in[i]);
  *reinterpret_cast<Pack<T, VEC>*>(p) = pk;
}

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
