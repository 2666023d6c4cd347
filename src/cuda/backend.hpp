#pragma once
// CUDA backend, seen from plain C++ (no CUDA headers here). Built from src/cuda/*.cu when
// nvcc is found; otherwise src/cuda/unavailable.cpp provides versions that throw.
#include <cstddef>

#include "../backend/args.hpp"
#include "cpattn/context.hpp"

namespace cpattn::cuda {

bool compiled();  // false in a build without nvcc
int device_count();  // 0 where no driver/GPU is present

// pdl: launch as a programmatic dependent launch where the device runs it (Context::set_pdl)
void merge(const detail::MergeArgs& args, Stream stream, bool pdl = false);
// merge/correct calls go to merge_rows_kernel (merge_rows.cu) where it takes them (vector
// path, f32 lses, N <= 16, rows at one stride) and to merge_groups_kernel (merge.cu)
// otherwise. force_merge_groups(true) sends every call to merge_groups_kernel: the tests run
// their whole matrix on both kernels.
void force_merge_groups(bool on);
// Launches merge_rows_kernel for the call; false (nothing launched) when it does not take it.
bool launch_merge_rows(const detail::MergeArgs& args, Stream stream, bool pdl);
// The current device's SM count, queried once per device (the launch heuristics were tuned
// on H100's 132 SMs and scale with it).
int sm_count();
// Whether the current device runs programmatic dependent launches of cpattn's kernels:
// sm_90+ and code built for it (launch.cuh).
bool pdl_supported();
// Bytes of workspace pack() needs (the B + 1 prefix offsets).
size_t pack_workspace_bytes(const detail::PackArgs& args);
void pack(const detail::PackArgs& args, void* workspace, Stream stream);
// One cp_* call over the direct transport (cp_direct.cu): stores to the peers' symmetric
// buffers, a device-side barrier, the merge. Ordinary or dependent launch as for merge().
void cp_direct(const detail::DirectArgs& args, Stream stream, bool pdl = false);
// dst[i] = sum_r srcs[r][i] in f32, rounded once; srcs is a host array of device pointers.
void sum_buffers(const void* const* srcs, int count_srcs, void* dst, size_t count, DType dtype,
                 Stream stream);

void* device_malloc(size_t bytes, int device);
void device_free(void* ptr, int device);
void memcpy_async(void* dst, const void* src, size_t bytes, Stream stream);  // any direction
void memcpy_to_host(void* dst, const void* src, size_t bytes, Stream stream);  // synchronises
void stream_synchronize(Stream stream);
bool stream_is_capturing(Stream stream);
void set_device(int device);

// Makes `device` the current CUDA device for a scope and restores the previous one after:
// every op runs on its tensors' GPU whatever the caller's current device is (a kernel
// launched on another device would fault on the pointers or reject the stream). Costs one
// cudaGetDevice where the device is already current. Where it has to switch, it first checks
// that `memory` (one of the call's pointers) is on `device`: tensors labelled with another
// GPU than the one holding them (Device::cuda() is cuda:0) get an error naming both instead
// of a fault.
class DeviceGuard {
 public:
  explicit DeviceGuard(int device, const void* memory = nullptr);
  ~DeviceGuard();
  DeviceGuard(const DeviceGuard&) = delete;
  DeviceGuard& operator=(const DeviceGuard&) = delete;

 private:
  int previous_ = -1;  // -1: nothing to restore
};

}  // namespace cpattn::cuda
