#include <algorithm>
#include <cstdlib>
#include <map>

#include "../cuda/backend.hpp"
#include "cpattn/context.hpp"
#include "cpattn/error.hpp"

namespace cpattn {

struct Context::Impl {
  Device device;
  Stream stream = nullptr;
  bool pdl = false;
  void* workspace = nullptr;
  size_t workspace_size = 0;

  void release() {
    if (!workspace) return;
    if (device.type == DeviceType::cuda) {
      // cudaFree waits for work still using the block; the caller's stream is not touched
      // (it may already be destroyed when a Context outlives it)
      cuda::device_free(workspace, device.index);
    } else {
      std::free(workspace);
    }
    workspace = nullptr;
    workspace_size = 0;
  }
};

Context::Context() : impl_(std::make_unique<Impl>()) {}
Context::Context(Device device, Stream stream) : impl_(std::make_unique<Impl>()) {
  impl_->device = device;
  impl_->stream = stream;
  if (device.type == DeviceType::cuda && !cuda::compiled()) cuda::set_device(device.index);  // throws
}
Context::~Context() {
  if (impl_) {
    try {
      impl_->release();
    } catch (...) {  // destructor: a failing driver at exit must not terminate
    }
  }
}
Context::Context(Context&&) noexcept = default;
Context& Context::operator=(Context&&) noexcept = default;

Device Context::device() const { return impl_->device; }
Stream Context::stream() const { return impl_->stream; }
void Context::set_stream(Stream s) { impl_->stream = s; }
void Context::set_pdl(bool on) { impl_->pdl = on; }
bool Context::pdl() const { return impl_->pdl; }
size_t Context::workspace_size() const { return impl_->workspace_size; }

void* Context::workspace(size_t bytes) {
  Impl& m = *impl_;
  if (bytes == 0 || (bytes <= m.workspace_size && m.workspace)) return m.workspace;  // 0: nothing to reserve
  if (m.device.type == DeviceType::cuda && cuda::stream_is_capturing(m.stream))
    throw Error("ctx", "a workspace reserved before CUDA-graph capture (ctx.reserve(" + std::to_string(bytes) +
                           ") before capturing)",
                std::to_string(m.workspace_size) + " bytes reserved while the stream is capturing");
  m.release();
  const size_t rounded = ((std::max<size_t>(bytes, 1) + 255) / 256) * 256;
  if (m.device.type == DeviceType::cuda) {
    m.workspace = cuda::device_malloc(rounded, m.device.index);
  } else {
    m.workspace = std::aligned_alloc(256, rounded);
    if (!m.workspace) throw Error("workspace", "memory for " + std::to_string(rounded) + " bytes", "allocation failure");
  }
  m.workspace_size = rounded;
  return m.workspace;
}

Context& Context::default_for(Device device) {
  thread_local std::map<std::pair<int, int>, Context> contexts;
  const auto key = std::make_pair(static_cast<int>(device.type), device.index);
  auto it = contexts.find(key);
  if (it == contexts.end())
    it = contexts.emplace(key, Context(device)).first;
  return it->second;
}

}  // namespace cpattn
