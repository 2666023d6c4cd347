// LocalComm: ranks are threads of one process sharing a LocalGroup. A collective publishes
// each rank's send pointer, meets at a barrier, lets every rank read what it needs from
// the others' buffers, and meets again before anyone may reuse its buffers. CUDA buffers
// (all ranks on one device) are read by kernels on each rank's stream, synchronised at
// both barriers.
#include <condition_variable>
#include <cstring>
#include <mutex>
#include <thread>
#include <vector>

#include "../backend/transfer.hpp"
#include "cpattn/error.hpp"
#include "cpattn/local_comm.hpp"

namespace cpattn {

class LocalGroup {
 public:
  LocalGroup(int size, std::chrono::milliseconds timeout)
      : size_(size), timeout_(timeout), slots_(static_cast<size_t>(size)) {}

  int size() const { return size_; }
  std::vector<const void*>& slots() { return slots_; }

  void arrive_and_wait(int rank) {
    std::unique_lock<std::mutex> lock(mu_);
    throw_if_failed();
    const uint64_t gen = generation_;
    if (++arrived_ == size_) {
      arrived_ = 0;
      ++generation_;
      cv_.notify_all();
      return;
    }
    if (!cv_.wait_for(lock, timeout_, [&] { return generation_ != gen || failed_; })) {
      fail_locked("rank " + std::to_string(rank) + " waited " + std::to_string(timeout_.count()) +
                  " ms for the other ranks of the LocalComm group");
    }
    // a barrier that completed stands, even if a rank failed (and aborted) right after it
    if (generation_ == gen) throw_if_failed();
  }

  void abort(const std::string& why) {
    std::lock_guard<std::mutex> lock(mu_);
    if (!failed_) fail_locked(why);
  }

 private:
  void fail_locked(const std::string& why) {
    failed_ = true;
    failure_ = why;
    cv_.notify_all();
  }
  void throw_if_failed() const {
    if (failed_) throw Error("comm", "every rank of the LocalComm group to reach the collective", failure_);
  }

  const int size_;
  const std::chrono::milliseconds timeout_;
  std::vector<const void*> slots_;
  std::mutex mu_;
  std::condition_variable cv_;
  int arrived_ = 0;
  uint64_t generation_ = 0;
  bool failed_ = false;
  std::string failure_;
};

std::shared_ptr<LocalGroup> LocalComm::make_group(int size, std::chrono::milliseconds timeout) {
  if (size < 1) throw Error("size", "a group of at least 1 rank", std::to_string(size));
  return std::make_shared<LocalGroup>(size, timeout);
}

LocalComm::LocalComm(std::shared_ptr<LocalGroup> group, int rank) : group_(std::move(group)), rank_(rank) {
  if (!group_) throw Error("group", "a LocalGroup from LocalComm::make_group", "nullptr");
  if (rank < 0 || rank >= group_->size())
    throw Error("rank", "a rank in [0, " + std::to_string(group_->size()) + ")", std::to_string(rank));
}
LocalComm::~LocalComm() = default;

int LocalComm::size() const { return group_->size(); }

Context& LocalComm::scratch(Device device) {
  if (!scratch_ || scratch_->device() != device)
    scratch_ = std::make_unique<Context>(device);
  return *scratch_;
}

template <class During, class After>
void LocalComm::exchange(const void* send, Context& ctx, During&& during, After&& after) {
  detail::wait_for_stream(ctx);  // send must be complete before others read it
  group_->slots()[static_cast<size_t>(rank_)] = send;
  group_->arrive_and_wait(rank_);
  const std::vector<const void*> srcs = group_->slots();
  during(srcs);
  detail::wait_for_stream(ctx);  // done reading the others' buffers
  group_->arrive_and_wait(rank_);
  after();
}

void LocalComm::all_gather(const void* send, void* recv, size_t count, DType dtype, Context& ctx) {
  const size_t bytes = count * dtype_size(dtype);
  exchange(send, ctx, [&](const std::vector<const void*>& srcs) {
    for (size_t r = 0; r < srcs.size(); ++r) detail::run_copy(static_cast<char*>(recv) + r * bytes, srcs[r], bytes, ctx);
  }, [] {});
}

void LocalComm::reduce_scatter(const void* send, void* recv, size_t count, DType dtype, Context& ctx) {
  const size_t offset = static_cast<size_t>(rank_) * count * dtype_size(dtype);
  exchange(send, ctx, [&](const std::vector<const void*>& srcs) {
    std::vector<const void*> blocks(srcs.size());
    for (size_t r = 0; r < srcs.size(); ++r) blocks[r] = static_cast<const char*>(srcs[r]) + offset;
    detail::run_sum(blocks.data(), static_cast<int>(blocks.size()), recv, count, dtype, ctx);
  }, [] {});
}

void LocalComm::all_reduce(const void* send, void* recv, size_t count, DType dtype, Context& ctx) {
  const size_t bytes = count * dtype_size(dtype);
  void* temp = scratch(ctx.device()).workspace(bytes);
  exchange(send, ctx, [&](const std::vector<const void*>& srcs) {
    detail::run_sum(srcs.data(), static_cast<int>(srcs.size()), temp, count, dtype, ctx);
  }, [&] { detail::run_copy(recv, temp, bytes, ctx); });
}

void LocalComm::all_to_all(const void* send, void* recv, size_t count, DType dtype, Context& ctx) {
  const size_t bytes = count * dtype_size(dtype);
  exchange(send, ctx, [&](const std::vector<const void*>& srcs) {
    for (size_t r = 0; r < srcs.size(); ++r)
      detail::run_copy(static_cast<char*>(recv) + r * bytes,
                       static_cast<const char*>(srcs[r]) + static_cast<size_t>(rank_) * bytes, bytes, ctx);
  }, [] {});
}

void LocalComm::all_gather_host(const void* send, void* recv, size_t bytes) {
  Context host;
  exchange(send, host, [&](const std::vector<const void*>& srcs) {
    for (size_t r = 0; r < srcs.size(); ++r) std::memcpy(static_cast<char*>(recv) + r * bytes, srcs[r], bytes);
  }, [] {});
}

void run_local_ranks(int size, const std::function<void(Communicator&)>& fn, std::chrono::milliseconds timeout) {
  auto group = LocalComm::make_group(size, timeout);
  std::vector<std::exception_ptr> errors(static_cast<size_t>(size));
  std::mutex first_mu;
  int first = -1;  // the rank whose failure came first: the root cause
  std::vector<std::thread> threads;
  for (int r = 0; r < size; ++r) {
    threads.emplace_back([&, r] {
      try {
        LocalComm comm(group, r);
        fn(comm);
      } catch (const std::exception& e) {
        errors[static_cast<size_t>(r)] = std::current_exception();
        {
          std::lock_guard<std::mutex> lock(first_mu);
          if (first < 0) first = r;
        }
        group->abort("rank " + std::to_string(r) + " failed: " + e.what());
      }
    });
  }
  for (auto& t : threads) t.join();
  if (first >= 0) std::rethrow_exception(errors[static_cast<size_t>(first)]);
}

}  // namespace cpattn
