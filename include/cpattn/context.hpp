#pragma once
// Context: the device, the stream and the workspace an op runs with. Replaces vLLM's
// CPTritonContext. Cheap to create, safe to reuse, optional everywhere (ops given no
// context use a per-thread default one for the tensors' device). Not thread-safe: one
// context per thread (or per stream).
#include <cstddef>
#include <memory>

#include "cpattn/tensor.hpp"

struct CUstream_st;  // cudaStream_t without including the CUDA headers

namespace cpattn {

using Stream = CUstream_st*;

class Context {
 public:
  Context();                                                // CPU
  explicit Context(Device device, Stream stream = nullptr); // CUDA: nullptr = legacy default stream
  ~Context();
  Context(Context&&) noexcept;
  Context& operator=(Context&&) noexcept;
  Context(const Context&) = delete;
  Context& operator=(const Context&) = delete;

  Device device() const;
  Stream stream() const;
  void set_stream(Stream stream);

  // Programmatic dependent launch (off by default): merge_attn_states, correct_attn_out and
  // the cp functions' merge steps launch their kernels so that they can be scheduled while
  // the kernel before them on the stream is still running, and wait on the GPU for its
  // results. It hides most of the launch latency of decode-size calls when the kernel before
  // also allows it (cpattn's kernels do; FlashInfer's with enable_pdl). Needs sm_90+ (H100
  // and later); elsewhere the kernels launch as usual. Captured into CUDA graphs as
  // programmatic edges.
  void set_pdl(bool on);
  bool pdl() const;

  // Scratch memory on the context's device, at least `bytes`, 256-byte aligned. Grows
  // (synchronising the device once to free the old block) and never shrinks. While the
  // stream is being captured into a CUDA graph it cannot grow: call reserve() first.
  void* workspace(size_t bytes);
  void reserve(size_t bytes) { workspace(bytes); }
  size_t workspace_size() const;

  // The per-thread context used when an op is called with ctx == nullptr.
  static Context& default_for(Device device);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace cpattn
