#pragma once
// LocalComm: in-process ranks, the default communicator of `cpattn demo` and the tests.
#include <chrono>
#include <functional>
#include <memory>

#include "cpattn/comm.hpp"

namespace cpattn {

// `size` ranks in one process, one thread each, on CPU buffers (or CUDA buffers of one GPU
// shared by every rank). Collectives block until every rank has arrived; a rank that does
// not arrive within `timeout` makes every waiting rank throw (and the group stays failed)
// instead of hanging. Reductions take f32, f16 and bf16 (summed in f32, rounded once).
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
