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
std::string device_description(Device device);
void synchronize(Device device);

// Median time in microseconds of one call of fn: on CUDA, `calls` back-to-back calls
// captured in a CUDA graph and replayed (launch gaps removed, as the seed's table was
// measured); on CPU, wall time per call.
double time_us(Device device, Context& ctx, const std::function<void()>& fn, int calls, int warmup);
// Device copy bandwidth in GB/s (bytes read + written), measured now on `bytes`.
double copy_bandwidth_gbs(Device device, size_t bytes);
// Host wall time per call of fn, back to back without synchronising (launch overhead).
double host_us_per_call(Device device, const std::function<void()>& fn, int calls);

}  // namespace cpattn::cli
