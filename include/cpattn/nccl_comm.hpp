#pragma once
// NcclComm: the Communicator over NCCL for CUDA buffers (one rank per GPU). Include only in
// builds with NCCL (cpattn/config.hpp: CPATTN_HAS_NCCL).
//
// Collectives are enqueued on the op's stream (Context::stream()) and return at once.
// Failures come back as cpattn::Error carrying ncclGetErrorString and ncclGetLastError.
// The one blocking call, all_gather_host (the argument check of the cp_* functions), waits
// at most `timeout`; a peer that never arrives makes it abort the communicator
// (ncclCommAbort) and throw, instead of hanging. A communicator that was aborted or that
// reported an asynchronous error throws on every later call.
#include <nccl.h>

#include <chrono>
#include <memory>

#include "cpattn/comm.hpp"

namespace cpattn {

class NcclComm final : public Communicator {
 public:
  // Wraps a communicator and device the caller owns (an inference engine's own).
  NcclComm(ncclComm_t comm, int device, std::chrono::milliseconds timeout = std::chrono::minutes(5));
  // Creates one over MPI_COMM_WORLD: rank 0's unique id is broadcast over MPI, each rank
  // takes GPU `device`, or (device < 0) its node-local rank modulo the GPUs it sees.
  static std::unique_ptr<NcclComm> create_with_mpi(int device = -1,
                                                   std::chrono::milliseconds timeout = std::chrono::minutes(5));
  ~NcclComm() override;
  NcclComm(const NcclComm&) = delete;
  NcclComm& operator=(const NcclComm&) = delete;

  int rank() const override { return rank_; }
  int size() const override { return size_; }
  int device() const { return device_; }
  std::string name() const override { return "nccl"; }
  bool accepts(Device d) const override { return d.type == DeviceType::cuda && d.index == device_; }
  ncclComm_t handle() const { return comm_; }
  // ncclCommAbort: ends every pending operation of this rank at once (a peer is known to be
  // gone); every later call throws. Does not wait for the other ranks.
  void abort();

  void all_gather(const void* send, void* recv, size_t count, DType dtype, Context& ctx) override;
  void reduce_scatter(const void* send, void* recv, size_t count, DType dtype, Context& ctx) override;
  void all_reduce(const void* send, void* recv, size_t count, DType dtype, Context& ctx) override;
  void all_to_all(const void* send, void* recv, size_t count, DType dtype, Context& ctx) override;
  void all_gather_host(const void* send, void* recv, size_t bytes) override;
  std::string direct_unavailable(Device device) const override;
  const SymmetricBuffers& symmetric_buffers(size_t bytes, Context& ctx) override;

 private:
  void check_health();
  void check_direct_barrier();
  void release_window();
  SymmetricBuffers symmetric_;
  void* window_ = nullptr;  // ncclWindow_t (NCCL >= 2.27), kept opaque here
  void* window_memory_ = nullptr;
  size_t window_bytes_ = 0;     // the largest window registered so far (growth doubles it)
  void* host_error_ = nullptr;  // host-mapped: a peer the barrier gave up on, plus one
  std::string direct_unavailable_;  // decided once, at construction
  ncclComm_t comm_ = nullptr;
  bool owned_ = false, aborted_ = false;
  int rank_ = 0, size_ = 1, device_ = 0;
  std::chrono::milliseconds timeout_;
  Context host_exchange_;  // device staging for all_gather_host
};

}  // namespace cpattn
