#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "device.hpp"

#if CPATTN_HAS_CUDA
#include <cuda_runtime.h>
#define CLI_CUDA(call)                                                                       \
  do {                                                                                       \
    cudaError_t e_ = (call);                                                                 \
    if (e_ != cudaSuccess) throw Error("CUDA", "success from " #call, cudaGetErrorString(e_)); \
  } while (0)
#endif

namespace cpattn::cli {
#if CPATTN_HAS_CUDA
cudaError_t launch_copy_kernel(void* dst, const void* src, size_t bytes, cudaStream_t stream);  // copy_kernel.cu
#endif
namespace {
using Clock = std::chrono::steady_clock;
double us_since(Clock::time_point t) { return std::chrono::duration<double, std::micro>(Clock::now() - t).count(); }
double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}
}  // namespace

Buffer::Buffer(size_t bytes, Device device) : bytes_(bytes), device_(device) {
  const size_t n = std::max<size_t>(bytes, 16);
  if (device.type == DeviceType::cuda) {
#if CPATTN_HAS_CUDA
    CLI_CUDA(cudaSetDevice(device.index));
    CLI_CUDA(cudaMalloc(&ptr_, n));
#else
    throw Error("--device", "cpu (this build has no CUDA)", "cuda");
#endif
  } else {
    ptr_ = std::aligned_alloc(256, (n + 255) / 256 * 256);
    if (!ptr_) throw Error("memory", std::to_string(n) + " bytes", "allocation failure");
  }
}
Buffer::Buffer(Buffer&& o) noexcept : ptr_(o.ptr_), bytes_(o.bytes_), device_(o.device_) { o.ptr_ = nullptr; }
Buffer::~Buffer() {
  if (!ptr_) return;
#if CPATTN_HAS_CUDA
  if (device_.type == DeviceType::cuda) {
    cudaFree(ptr_);
    return;
  }
#endif
  std::free(ptr_);
}

void Buffer::upload(const void* host, size_t bytes, size_t offset) {
  if (bytes == 0) return;  // an empty host vector may hand over a null pointer
#if CPATTN_HAS_CUDA
  if (device_.type == DeviceType::cuda) {
    CLI_CUDA(cudaMemcpy(static_cast<char*>(ptr_) + offset, host, bytes, cudaMemcpyHostToDevice));
    return;
  }
#endif
  std::memcpy(static_cast<char*>(ptr_) + offset, host, bytes);
}

void Buffer::download(void* host, size_t bytes, size_t offset) const {
  if (bytes == 0) return;
#if CPATTN_HAS_CUDA
  if (device_.type == DeviceType::cuda) {
    CLI_CUDA(cudaMemcpy(host, static_cast<const char*>(ptr_) + offset, bytes, cudaMemcpyDeviceToHost));
    return;
  }
#endif
  std::memcpy(host, static_cast<const char*>(ptr_) + offset, bytes);
}

bool cuda_available() {
#if CPATTN_HAS_CUDA
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess) {
    (void)cudaGetLastError();
    return false;
  }
  return n > 0;
#else
  return false;
#endif
}

std::string device_description(Device device) {
#if CPATTN_HAS_CUDA
  if (device.type == DeviceType::cuda) {
    cudaDeviceProp p{};
    CLI_CUDA(cudaGetDeviceProperties(&p, device.index));
    return std::string(p.name) + " (sm_" + std::to_string(p.major) + std::to_string(p.minor) + ", " +
           std::to_string(p.multiProcessorCount) + " SMs)";
  }
#endif
  (void)device;
  return "CPU";
}

void synchronize(Device device) {
#if CPATTN_HAS_CUDA
  if (device.type == DeviceType::cuda) CLI_CUDA(cudaDeviceSynchronize());
#endif
  (void)device;
}

double time_us(Device device, Context& ctx, const std::function<void()>& fn, int calls, int warmup) {
  calls = std::max(calls, 1);
#if CPATTN_HAS_CUDA
  if (device.type == DeviceType::cuda) {
    // the legacy default stream cannot be captured: time on a stream of our own
    const Stream caller_stream = ctx.stream();
    cudaStream_t s;
    CLI_CUDA(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));
    CLI_CUDA(cudaDeviceSynchronize());
    ctx.set_stream(s);
    for (int i = 0; i < std::max(warmup, 1); ++i) fn();
    CLI_CUDA(cudaStreamSynchronize(s));
    cudaGraph_t graph;
    cudaGraphExec_t exec;
    CLI_CUDA(cudaStreamBeginCapture(s, cudaStreamCaptureModeThreadLocal));
    for (int i = 0; i < calls; ++i) fn();
    CLI_CUDA(cudaStreamEndCapture(s, &graph));
    CLI_CUDA(cudaGraphInstantiate(&exec, graph, 0));
    cudaEvent_t a, b;
    CLI_CUDA(cudaEventCreate(&a));
    CLI_CUDA(cudaEventCreate(&b));
    CLI_CUDA(cudaGraphLaunch(exec, s));  // upload + warm
    std::vector<double> t;
    for (int rep = 0; rep < 9; ++rep) {
      CLI_CUDA(cudaEventRecord(a, s));
      CLI_CUDA(cudaGraphLaunch(exec, s));
      CLI_CUDA(cudaEventRecord(b, s));
      CLI_CUDA(cudaEventSynchronize(b));
      float ms = 0;
      CLI_CUDA(cudaEventElapsedTime(&ms, a, b));
      t.push_back(1e3 * ms / calls);
    }
    cudaEventDestroy(a);
    cudaEventDestroy(b);
    cudaGraphExecDestroy(exec);
    cudaGraphDestroy(graph);
    ctx.set_stream(caller_stream);
    cudaStreamDestroy(s);
    return median(t);
  }
#endif
  (void)device;
  (void)ctx;
  for (int i = 0; i < warmup; ++i) fn();
  std::vector<double> t;
  for (int i = 0; i < calls; ++i) {
    const auto start = Clock::now();
    fn();
    t.push_back(us_since(start));
  }
  return median(t);
}

double copy_bandwidth_gbs(Device device, size_t bytes) {
  Buffer src(bytes, device), dst(bytes, device);
#if CPATTN_HAS_CUDA
  if (device.type == DeviceType::cuda) {
    CLI_CUDA(cudaMemset(src.data(), 1, bytes));
    Context ctx(device);
    const double us = time_us(device, ctx, [&] {
      CLI_CUDA(launch_copy_kernel(dst.data(), src.data(), bytes, reinterpret_cast<cudaStream_t>(ctx.stream())));
    }, 5, 2);
    return 2.0 * static_cast<double>(bytes) / us / 1e3;
  }
#endif
  // CPU: the same OpenMP threads the kernels use, each copying its own slice
  std::memset(src.data(), 1, bytes);
  std::memset(dst.data(), 0, bytes);
  Context ctx;
  const double us = time_us(device, ctx, [&] {
    const auto n = static_cast<int64_t>(bytes), chunk = int64_t{1} << 20;
#pragma omp parallel for schedule(static)
    for (int64_t off = 0; off < n; off += chunk)
      std::memcpy(static_cast<char*>(dst.data()) + off, static_cast<const char*>(src.data()) + off,
                  static_cast<size_t>(std::min(chunk, n - off)));
  }, 7, 2);
  return 2.0 * static_cast<double>(bytes) / us / 1e3;
}

double host_us_per_call(Device device, const std::function<void()>& fn, int calls) {
  for (int i = 0; i < 20; ++i) fn();
  synchronize(device);
  const auto start = Clock::now();
  for (int i = 0; i < calls; ++i) fn();
  const double us = us_since(start) / calls;
  synchronize(device);
  return us;
}

}  // namespace cpattn::cli
