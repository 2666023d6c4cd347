#pragma once
// Communicator: the collectives the cp_* functions are written against. Counts are in
// elements of `dtype`; reductions are sums. Buffers live where accepts() says.
#include <cstddef>
#include <memory>
#include <string>

#include "cpattn/context.hpp"
#include "cpattn/tensor.hpp"

namespace cpattn {

namespace detail {
struct AgreedCalls;
struct AgreedCallsOf;
}  // namespace detail

// Peer-addressable device memory for the cp functions' direct transport, registered once
// per communicator (NcclComm: an NCCL symmetric window). Every rank's buffer has the same
// size and layout; `peers[r]` is rank r's buffer as this rank addresses it (NVLink loads
// and stores), `peers[rank()]` its own. `state` (two words: the call counter and a block
// counter) is this rank's alone; `error` is host-mapped memory where the barrier records
// rank + 1 of a peer that did not arrive within `timeout_ns`.
struct SymmetricBuffers {
  static constexpr int kMaxRanks = 16;
  char* peers[kMaxRanks] = {};
  size_t bytes = 0;
  unsigned* state = nullptr;
  int* error = nullptr;
  unsigned long long timeout_ns = 0;
};

class Communicator {
 public:
  virtual ~Communicator() = default;
  virtual int rank() const = 0;
  virtual int size() const = 0;
  virtual std::string name() const = 0;
  // Where data buffers must be: cpu for LocalComm/MpiComm, cuda for NcclComm. LocalComm
  // also accepts CUDA buffers (all ranks in one process on one device).
  virtual bool accepts(Device device) const = 0;

  // recv [size * count] = concat over ranks of send [count]
  virtual void all_gather(const void* send, void* recv, size_t count, DType dtype,
                          Context& ctx) = 0;
  // recv [count] = sum over ranks of send [rank() * count, (rank() + 1) * count)
  virtual void reduce_scatter(const void* send, void* recv, size_t count, DType dtype,
                              Context& ctx) = 0;
  // recv [count] = sum over ranks of send [count]; recv may equal send
  virtual void all_reduce(const void* send, void* recv, size_t count, DType dtype,
                          Context& ctx) = 0;
  // recv [r * count, (r + 1) * count) = send of rank r, block [rank() * count, ...)
  virtual void all_to_all(const void* send, void* recv, size_t count, DType dtype,
                          Context& ctx) = 0;
  // Host-memory all-gather of a few bytes, blocking. Used to check before the data
  // collectives that every rank passed the same arguments, so a mismatch raises the same
  // error on every rank instead of hanging.
  virtual void all_gather_host(const void* send, void* recv, size_t bytes) = 0;

  // The direct transport. direct_unavailable() is empty when this communicator can give
  // the cp functions symmetric buffers for data on `device`, else the reason it cannot.
  // symmetric_buffers() returns buffers of at least `bytes` (every rank calls it with the
  // same size, in the same call: growing them is collective), first raising an error if
  // an earlier direct call timed out (a peer that never arrived).
  virtual std::string direct_unavailable(Device device) const {
    (void)device;
    return "the " + name() + " communicator has no symmetric memory (the direct path needs an NcclComm)";
  }
  virtual const SymmetricBuffers& symmetric_buffers(size_t bytes, Context& ctx);

 private:
  // The cp functions' record of the calls every rank of this communicator has agreed on
  // (ConsistencyCheck::first_call), kept with the communicator and opaque here: its type
  // and its one accessor live in src/core/cp_args.cpp.
  friend struct detail::AgreedCallsOf;
  std::shared_ptr<detail::AgreedCalls> agreed_calls_;
};

}  // namespace cpattn
