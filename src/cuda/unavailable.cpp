// Built instead of the .cu files of this folder when cpattn is built without nvcc: every
// CUDA entry point reports that clearly instead of failing to link or crashing.
#include "backend.hpp"
#include "cpattn/error.hpp"

namespace cpattn::cuda {
namespace {
[[noreturn]] void unavailable() {
  throw Error("device", "CPU tensors (this cpattn was built without CUDA: rebuild with nvcc present and "
                        "-DCPATTN_CUDA=ON)",
              "a CUDA tensor or context");
}
}  // namespace

bool compiled() { return false; }
int device_count() { return 0; }
void merge(const detail::MergeArgs&, Stream, bool) { unavailable(); }
void force_merge_groups(bool) {}
bool launch_merge_rows(const detail::MergeArgs&, Stream, bool) { unavailable(); }
int sm_count() { unavailable(); }
bool pdl_supported() { return false; }
size_t pack_workspace_bytes(const detail::PackArgs&) { unavailable(); }
void pack(const detail::PackArgs&, void*, Stream) { unavailable(); }
void cp_direct(const detail::DirectArgs&, Stream, bool) { unavailable(); }
void sum_buffers(const void* const*, int, void*, size_t, DType, Stream) { unavailable(); }
void* device_malloc(size_t, int) { unavailable(); }
void device_free(void*, int) {}
void memcpy_async(void*, const void*, size_t, Stream) { unavailable(); }
void memcpy_to_host(void*, const void*, size_t, Stream) { unavailable(); }
void stream_synchronize(Stream) { unavailable(); }
bool stream_is_capturing(Stream) { return false; }
void set_device(int) { unavailable(); }
DeviceGuard::DeviceGuard(int, const void*) { unavailable(); }
DeviceGuard::~DeviceGuard() = default;

}  // namespace cpattn::cuda
