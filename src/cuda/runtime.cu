// CUDA runtime glue: memory, copies, stream queries, and the sum LocalComm uses for CUDA
// buffers.
#include <cuda_runtime.h>

#include <algorithm>
#include <atomic>
#include <string>

#include "../backend/check_cuda.hpp"
#include "backend.hpp"
#include "elements.cuh"

namespace cpattn::cuda {
namespace {

constexpr int kMaxSumSources = 64;
struct Sources {
  const void* ptr[kMaxSumSources];
};

// sum_kernel: dst[i] = sum over r < n of srcs.ptr[r][i], in f32, rounded once to T.
//   srcs: n <= kMaxSumSources device buffers [count] of T; dst [count] (may be a source).
// Grid: min(ceil(count / 256), 65535) blocks of 256 threads, a grid-stride loop: each
// thread sums elements i, i + (grid size), ...
template <class T>
__global__ void sum_kernel(Sources srcs, int n, T* dst, int64_t count) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < count;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    float s = 0.0f;
    for (int r = 0; r < n; ++r) s += to_f32(static_cast<const T*>(srcs.ptr[r])[i]);
    dst[i] = from_f32<T>(s);
  }
}

}  // namespace

bool compiled() { return true; }

int device_count() {
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess) {
    (void)cudaGetLastError();  // no driver / no device: report none, leave no sticky error
    return 0;
  }
  return n;
}

// A per-device fact, queried once per device (index < 64) and cached: query(device) > 0.
template <class Query>
int cached_for_current_device(std::atomic<int> (&cache)[64], Query query) {
  int device = 0;
  CPATTN_CHECK_CUDA(cudaGetDevice(&device));
  const bool cacheable = device >= 0 && device < 64;
  int v = cacheable ? cache[device].load(std::memory_order_relaxed) : 0;
  if (v == 0) {
    v = query(device);
    if (cacheable) cache[device].store(v, std::memory_order_relaxed);
  }
  return v;
}

int sm_count() {
  static std::atomic<int> cache[64] = {};
  return cached_for_current_device(cache, [](int device) {
    int n = 0;
    CPATTN_CHECK_CUDA(cudaDeviceGetAttribute(&n, cudaDevAttrMultiProcessorCount, device));
    return n;
  });
}

bool pdl_supported() {
  static std::atomic<int> cache[64] = {};  // 1: no, 2: yes
  return cached_for_current_device(cache, [](int device) {
    int major = 0;
    CPATTN_CHECK_CUDA(cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device));
    // the kernels must run code built for sm_90+ (where griddepcontrol.wait exists), not
    // older PTX compiled on load: every .cu file is built for the same architectures
    cudaFuncAttributes attributes{};
    CPATTN_CHECK_CUDA(cudaFuncGetAttributes(&attributes, sum_kernel<float>));
    return major >= 9 && attributes.ptxVersion >= 90 ? 2 : 1;
  }) == 2;
}

void* device_malloc(size_t bytes, int device) {
  int previous = 0;
  CPATTN_CHECK_CUDA(cudaGetDevice(&previous));
  CPATTN_CHECK_CUDA(cudaSetDevice(device));
  void* p = nullptr;
  const cudaError_t err = cudaMalloc(&p, bytes);
  cudaSetDevice(previous);
  CPATTN_CHECK_CUDA(err);
  return p;
}

void device_free(void* p, int) { CPATTN_CHECK_CUDA(cudaFree(p)); }

void memcpy_async(void* dst, const void* src, size_t bytes, Stream stream) {
  CPATTN_CHECK_CUDA(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDefault, stream));
}

void memcpy_to_host(void* dst, const void* src, size_t bytes, Stream stream) {
  CPATTN_CHECK_CUDA(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDefault, stream));
  CPATTN_CHECK_CUDA(cudaStreamSynchronize(stream));
}

void stream_synchronize(Stream stream) { CPATTN_CHECK_CUDA(cudaStreamSynchronize(stream)); }

bool stream_is_capturing(Stream stream) {
  cudaStreamCaptureStatus status = cudaStreamCaptureStatusNone;
  CPATTN_CHECK_CUDA(cudaStreamIsCapturing(stream, &status));
  return status != cudaStreamCaptureStatusNone;
}

void set_device(int device) { CPATTN_CHECK_CUDA(cudaSetDevice(device)); }

DeviceGuard::DeviceGuard(int device, const void* memory) {
  int current = 0;
  CPATTN_CHECK_CUDA(cudaGetDevice(&current));
  if (current == device) return;
  cudaPointerAttributes attr{};
  if (memory && cudaPointerGetAttributes(&attr, memory) == cudaSuccess) {
    if (attr.type == cudaMemoryTypeDevice && attr.device != device)
      throw Error("device",
                  "tensors in memory of the GPU their Device names (cuda:" + std::to_string(device) + ")",
                  "memory of cuda:" + std::to_string(attr.device) + " (the current device is cuda:" +
                      std::to_string(current) + "): label them Device::cuda(" + std::to_string(attr.device) + ")");
  } else {
    (void)cudaGetLastError();  // memory CUDA does not know: left to the op
  }
  CPATTN_CHECK_CUDA(cudaSetDevice(device));
  previous_ = current;
}

DeviceGuard::~DeviceGuard() {
  if (previous_ >= 0) (void)cudaSetDevice(previous_);  // a destructor must not throw
}

void sum_buffers(const void* const* srcs, int n, void* dst, size_t count, DType dtype, Stream stream) {
  if (n > kMaxSumSources)
    throw Error("sources", "at most " + std::to_string(kMaxSumSources) + " buffers to sum on CUDA", std::to_string(n));
  Sources s{};
  std::copy(srcs, srcs + n, s.ptr);
  const auto total = static_cast<int64_t>(count);
  const auto blocks = static_cast<unsigned>(std::min<int64_t>((total + 255) / 256, 65535));
  CPATTN_DISPATCH_CUDA_FLOAT(dtype, "dtype", T, [&] { sum_kernel<<<blocks, 256, 0, stream>>>(s, n, static_cast<T*>(dst), total); });
  CPATTN_CHECK_LAUNCH();
}

}  // namespace cpattn::cuda
