#pragma once
// Communicator: the collectives the cp_* functions are written against. Counts are in
// elements of `dtype`; reductions are sums. Buffers live where buffer_device() says.
#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <unordered_set>

#include "cpattn/context.hpp"
#include "cpattn/tensor.hpp"

namespace cpattn {

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

  // Signatures of cp_* calls that every rank of this communicator has agreed on (filled
  // by ConsistencyCheck::first_call; identical on every rank since all ranks fill it from
  // the same exchange).
  std::unordered_set<std::string>& agreed_calls() { return agreed_calls_; }

 private:
  std::unordered_set<std::string> agreed_calls_;
};

// LocalComm: `size` ranks in one process, one thread each. Collectives block until every
// rank has arrived; a rank that does not arrive within `timeout` makes every waiting rank
// throw (and the group stays failed) instead of hanging.
class LocalGroup;
class LocalComm final : public Communicator {
 public:
  LocalComm(std::shared_ptr<LocalGroup> group, int rank);
  ~LocalComm() override;
  static std::shared_ptr<LocalGroup> make_group(
      int size, std::chrono::milliseconds timeout = std::chrono::seconds(60));

  int rank() const override { return rank_; }
  int size() const override;
  std::string name() const override { return "local"; }
  bool accepts(Device) const override { return true; }
  void all_gather(const void* send, void* recv, size_t count, DType dtype, Context& ctx) override;
  void reduce_scatter(const void* send, void* recv, size_t count, DType dtype,
                      Context& ctx) override;
  void all_reduce(const void* send, void* recv, size_t count, DType dtype, Context& ctx) override;
  void all_to_all(const void* send, void* recv, size_t count, DType dtype, Context& ctx) override;
  void all_gather_host(const void* send, void* recv, size_t bytes) override;

 private:
  template <class During, class After>
  void exchange(const void* send, Context& ctx, During&& during, After&& after);
  Context& scratch(Device device);

  std::shared_ptr<LocalGroup> group_;
  int rank_;
  std::unique_ptr<Context> scratch_;  // all_reduce result before it may overwrite send
};

// Runs fn(comm) on `size` threads, one LocalComm each; after every thread has finished,
// rethrows the exception of the rank that failed first in time (the root cause; the others
// were then released with a group error).
void run_local_ranks(int size, const std::function<void(Communicator&)>& fn,
                     std::chrono::milliseconds timeout = std::chrono::seconds(60));

}  // namespace cpattn
