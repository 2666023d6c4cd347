#pragma once
// Shared by the standalone probes in bench/probes: a CUDA error check, the timing of
// `cpattn bench` (the median of 9 replays of a CUDA graph of 50 back-to-back calls) and
// random bf16 data.
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstdint>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <vector>

#define CHECK(x)                                                                     \
  do {                                                                               \
    cudaError_t e = (x);                                                             \
    if (e != cudaSuccess) {                                                          \
      std::fprintf(stderr, "%s:%d %s\n", __FILE__, __LINE__, cudaGetErrorString(e)); \
      std::exit(1);                                                                  \
    }                                                                                \
  } while (0)

// Median us per call of `fn` (enqueues one call on s), 50 calls per graph.
// PROBE_ONCE=1 in the environment: one eager call per variant, no timing (for ncu).
inline double time_us(cudaStream_t s, const std::function<void()>& fn) {
  fn();
  CHECK(cudaStreamSynchronize(s));
  CHECK(cudaGetLastError());
  if (std::getenv("PROBE_ONCE")) return 0;
  cudaGraph_t g;
  cudaGraphExec_t x;
  CHECK(cudaStreamBeginCapture(s, cudaStreamCaptureModeThreadLocal));
  for (int i = 0; i < 50; ++i) fn();
  CHECK(cudaStreamEndCapture(s, &g));
  CHECK(cudaGraphInstantiate(&x, g, 0));
  cudaEvent_t a, b;
  CHECK(cudaEventCreate(&a));
  CHECK(cudaEventCreate(&b));
  CHECK(cudaGraphLaunch(x, s));
  std::vector<double> t;
  for (int r = 0; r < 9; ++r) {
    CHECK(cudaEventRecord(a, s));
    CHECK(cudaGraphLaunch(x, s));
    CHECK(cudaEventRecord(b, s));
    CHECK(cudaEventSynchronize(b));
    float ms;
    CHECK(cudaEventElapsedTime(&ms, a, b));
    t.push_back(1e3 * ms / 50);
  }
  std::sort(t.begin(), t.end());
  CHECK(cudaEventDestroy(a));
  CHECK(cudaEventDestroy(b));
  CHECK(cudaGraphExecDestroy(x));
  CHECK(cudaGraphDestroy(g));
  return t[4];
}

// bf16 values in [-1, 1) from a hash of the index (a memset fills every line with one value).
// Grid-stride: any grid covers any n. One probe per binary, so defining it here is fine.
__global__ void fill_random(__nv_bfloat16* p, size_t n, uint32_t seed) {
  for (size_t i = blockIdx.x * static_cast<size_t>(blockDim.x) + threadIdx.x; i < n; i += static_cast<size_t>(gridDim.x) * blockDim.x) {
    uint32_t h = static_cast<uint32_t>(i) * 2654435761u ^ seed;
    h ^= h >> 15;
    h *= 2246822519u;
    h ^= h >> 13;
    p[i] = __float2bfloat16(static_cast<float>(h & 0xffff) / 32768.0f - 1.0f);
  }
}
