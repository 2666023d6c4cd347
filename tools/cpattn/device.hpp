#pragma once
// What the CLI needs from the device beyond the library: buffers, copies, timing, and the
// copy bandwidth that every benchmark row is compared with. CPU and CUDA behind one face.
#include <cstddef>
#include <functional>
#include <string>

#include "cpattn/cpattn.hpp"

namespace cpattn::cli {

class Buffer {
 public:
  Buffer(size_t bytes, Device device);
  ~Buffer();
  Buffer(Buffer&& o) noexcept;
  Buffer& operator=(Buffer&&) = delete;
  Buffer(const Buffer&) = delete;
  void* data() const { return ptr_; }
  size_t bytes() const { return bytes_; }
  void upload(const void* host, size_t bytes, size_t offset = 0);
  void download(void* host, size_t bytes, size_t offset = 0) const;

 private:
  void* ptr_ = nullptr;
  size_t bytes_ = 0;
  Device device_;
};

bool cuda_available();  // compiled with CUDA and a device is present
// --device cuda[:i] only where it can run: an Error naming --device for a build without CUDA,
// no visible CUDA device ("no CUDA device visible", with the CUDA runtime's reason) or an index
// past the visible devices. Nothing for the CPU.
void check_device(Device device);

// Memory this process can still allocate, and which limit says so.
struct MemoryAvailable {
  double bytes = 0;
  std::string source;  // e.g. "MemAvailable in /proc/meminfo", "free memory of cuda:0 (cudaMemGetInfo)"
};
// Host: the least of /proc/meminfo MemAvailable (else sysconf), the cgroup memory limit less its
// use (v2 memory.max, v1 memory.limit_in_bytes) and the address-space / data rlimits less what
// this process maps. CUDA: the device's free memory.
MemoryAvailable memory_available(Device device);
// "" when `needed` bytes fit in memory_available(device); else a phrase for a skipped row:
// "needs about 9.0 GiB of host memory, 2.9 GiB available (...)".
std::string memory_shortfall(Device device, double needed);
// Throws Error("sizes", ...) when `needed` bytes do not fit in memory_available(device),
// saying how much is needed and how much there is; `what` names the run and its sizes
// ("-B 4096 -H 32 ..."), `detail` the largest part and what to make smaller.
void check_memory(Device device, double needed, const std::string& what, const std::string& detail);
std::string device_description(Device device);
void synchronize(Device device);

// Median time in microseconds of one call of fn: on CUDA, `calls` back-to-back calls
// captured in a CUDA graph and replayed (launch gaps removed, as vLLM's Triton functions'
// table was measured); on CPU, wall time per call.
double time_us(Device device, Context& ctx, const std::function<void()>& fn, int calls, int warmup);
// Device copy bandwidth in GB/s (bytes read + written), measured now on `bytes`: the copy
// engine's (cudaMemcpyAsync device to device; on the CPU, memcpy from the kernels' OpenMP
// threads) and a plain copy kernel's (CUDA only). Every "% of copy" is against the faster.
struct CopyBandwidth {
  double memcpy_gbs = 0, kernel_gbs = 0;  // kernel_gbs 0 on the CPU
  double reference() const { return memcpy_gbs > kernel_gbs ? memcpy_gbs : kernel_gbs; }
};
CopyBandwidth copy_bandwidth(Device device, size_t bytes);
// Host wall time per call of fn, back to back without synchronising (launch overhead).
double host_us_per_call(Device device, const std::function<void()>& fn, int calls);

}  // namespace cpattn::cli
