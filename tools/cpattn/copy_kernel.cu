// One of the two copies every GPU benchmark row is compared with (the other is
// cudaMemcpyAsync; the faster is the reference): a plain 16-byte vectorised grid-stride
// device-to-device copy on the SMs, as torch's copy_ is.
#include <cuda_runtime.h>

#include <cstdint>

namespace cpattn::cli {

// copy16: dst[i] = src[i] for i < n 16-byte vectors. Grid: 8 blocks of 512 threads per SM, a
// grid-stride loop: each thread copies vectors i, i + (grid size), ...
__global__ void copy16(const uint4* __restrict__ src, uint4* __restrict__ dst, int64_t n) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x)
    dst[i] = src[i];
}

cudaError_t launch_copy_kernel(void* dst, const void* src, size_t bytes, cudaStream_t stream) {
  int sms = 0, device = 0;
  cudaGetDevice(&device);
  cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device);
  const int64_t n = static_cast<int64_t>(bytes / 16);
  copy16<<<sms * 8, 512, 0, stream>>>(static_cast<const uint4*>(src), static_cast<uint4*>(dst), n);
  return cudaGetLastError();
}

}  // namespace cpattn::cli
