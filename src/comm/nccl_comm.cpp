// NcclComm: NCCL collectives on the op's stream; a bounded wait for the blocking header
// exchange, with ncclCommAbort on timeout.
#include "cpattn/nccl_comm.hpp"

#include <cuda_runtime.h>

#include <algorithm>
#include <thread>
#include <vector>

#include "../backend/check_cuda.hpp"
#include "cpattn/config.hpp"
#include "cpattn/error.hpp"
#if CPATTN_NCCL_WINDOWS
#include "nccl_window.hpp"
#endif
#if CPATTN_HAS_MPI
#include <mpi.h>
#endif

#define CPATTN_CHECK_NCCL(comm, call)                                                             \
  do {                                                                                            \
    const ncclResult_t cpattn_nr_ = (call);                                                       \
    if (cpattn_nr_ != ncclSuccess && cpattn_nr_ != ncclInProgress) {                              \
      const char* last_ = ncclGetLastError(comm);                                                 \
      throw ::cpattn::Error("NCCL", "ncclSuccess from " #call,                                    \
                            std::string(ncclGetErrorString(cpattn_nr_)) + (last_ && *last_ ? ": " : "") + \
                                (last_ ? last_ : ""));                                            \
    }                                                                                             \
  } while (0)

namespace cpattn {
namespace {

ncclDataType_t nccl_type(DType d) {
  switch (d) {
    case DType::f64: return ncclFloat64;
    case DType::f32: return ncclFloat32;
    case DType::f16: return ncclFloat16;
    case DType::bf16: return ncclBfloat16;
    case DType::i64: return ncclInt64;
    case DType::i32: return ncclInt32;
    case DType::i8: return ncclInt8;
    case DType::u8: return ncclUint8;
    default: throw Error("dtype", "a dtype NCCL can move (f64/f32/f16/bf16/i64/i32/i8/u8)", dtype_name(d));
  }
}

cudaStream_t stream_of(Context& ctx) { return reinterpret_cast<cudaStream_t>(ctx.stream()); }

}  // namespace

NcclComm::NcclComm(ncclComm_t comm, int device, std::chrono::milliseconds timeout)
    : comm_(comm), device_(device), timeout_(timeout), host_exchange_(Device::cuda(device)) {
  if (!comm) throw Error("comm", "an initialised ncclComm_t", "nullptr");
  CPATTN_CHECK_NCCL(comm_, ncclCommUserRank(comm_, &rank_));
  CPATTN_CHECK_NCCL(comm_, ncclCommCount(comm_, &size_));
  // whether the direct transport can run here: decided once, the same way on every rank
  int version = 0;
  CPATTN_CHECK_NCCL(comm_, ncclGetVersion(&version));
#if !CPATTN_NCCL_WINDOWS
  direct_unavailable_ = "this cpattn was built against an NCCL without symmetric windows (the direct path needs >= 2.28)";
#else
  if (version < 22800) {
    direct_unavailable_ = "NCCL " + std::to_string(version) + " has no symmetric windows (the direct path needs >= 2.28)";
  } else if (size_ > SymmetricBuffers::kMaxRanks) {
    direct_unavailable_ = std::to_string(size_) + " ranks (the direct path takes at most " +
                          std::to_string(SymmetricBuffers::kMaxRanks) + ")";
  } else {
    CPATTN_CHECK_CUDA(cudaSetDevice(device_));
    const int team = nccl::load_store_team_size(comm_);
    if (team != size_)
      direct_unavailable_ = "the ranks do not share one NVLink domain (NCCL's load/store team holds " +
                            std::to_string(team) + " of " + std::to_string(size_) + " ranks)";
  }
#endif
}

std::unique_ptr<NcclComm> NcclComm::create_with_mpi(int device, std::chrono::milliseconds timeout) {
#if CPATTN_HAS_MPI
  int initialized = 0;
  MPI_Initialized(&initialized);
  if (!initialized) {
    int provided = 0;
    MPI_Init_thread(nullptr, nullptr, MPI_THREAD_FUNNELED, &provided);
    std::atexit([] {
      int finalized = 0;
      MPI_Finalized(&finalized);
      if (!finalized) MPI_Finalize();
    });
  }
  int rank = 0, size = 1, local_rank = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  MPI_Comm node;
  MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, rank, MPI_INFO_NULL, &node);
  MPI_Comm_rank(node, &local_rank);
  MPI_Comm_free(&node);
  int count = 0;
  CPATTN_CHECK_CUDA(cudaGetDeviceCount(&count));
  if (count < 1) throw Error("device", "a CUDA device for NcclComm", "none visible");
  if (device < 0) device = local_rank % count;
  CPATTN_CHECK_CUDA(cudaSetDevice(device));
  ncclUniqueId id;
  if (rank == 0) CPATTN_CHECK_NCCL(nullptr, ncclGetUniqueId(&id));
  MPI_Bcast(&id, sizeof(id), MPI_BYTE, 0, MPI_COMM_WORLD);
  ncclComm_t comm = nullptr;
  CPATTN_CHECK_NCCL(nullptr, ncclCommInitRank(&comm, size, id, rank));
  auto c = std::make_unique<NcclComm>(comm, device, timeout);
  c->owned_ = true;
  return c;
#else
  (void)device;
  (void)timeout;
  throw Error("NcclComm::create_with_mpi", "a cpattn built with MPI", "a build without MPI");
#endif
}

NcclComm::~NcclComm() {
  if (!aborted_) release_window();
  if (host_error_) cudaFreeHost(host_error_);
  if (symmetric_.state) cudaFree(symmetric_.state);
  if (owned_ && comm_) {
    if (aborted_) return;
    ncclCommDestroy(comm_);
  }
}

void NcclComm::abort() {
  if (aborted_) return;
  ncclCommAbort(comm_);
  aborted_ = true;
}

std::string NcclComm::direct_unavailable(Device device) const {
  if (!direct_unavailable_.empty()) return direct_unavailable_;
  if (aborted_) return "the communicator was aborted";
  if (device.type != DeviceType::cuda || device.index != device_)
    return "data on " + device_name(device) + ", not on this communicator's GPU cuda:" + std::to_string(device_);
  return "";
}

void NcclComm::release_window() {
#if CPATTN_NCCL_WINDOWS
  if (window_) ncclCommWindowDeregister(comm_, static_cast<ncclWindow_t>(window_));
#endif
  if (window_memory_) ncclMemFree(window_memory_);
  window_ = nullptr;
  window_memory_ = nullptr;
  symmetric_.bytes = 0;
}

// A direct call's barrier gave up on a peer: the ranks' call counters no longer agree, so
// no later direct call could be trusted; abort the communicator and name the peer.
void NcclComm::check_direct_barrier() {
  if (!host_error_) return;
  const int missing = *static_cast<volatile int*>(host_error_);
  if (missing == 0) return;
  ncclCommAbort(comm_);
  aborted_ = true;
  throw Error("comm", "rank " + std::to_string(missing - 1) + " to reach the direct transport's barrier within " +
                          std::to_string(timeout_.count()) + " ms",
              "no arrival: rank " + std::to_string(missing - 1) +
                  " never made the matching call (the NCCL communicator was aborted)");
}

const SymmetricBuffers& NcclComm::symmetric_buffers(size_t bytes, Context& ctx) {
  check_health();
  const std::string why = direct_unavailable(ctx.device());
  if (!why.empty()) throw Error("path", "a communicator the direct transport runs on", why);
  if (bytes <= symmetric_.bytes) return symmetric_;
  cudaStreamCaptureStatus capturing = cudaStreamCaptureStatusNone;
  CPATTN_CHECK_CUDA(cudaStreamIsCapturing(reinterpret_cast<cudaStream_t>(ctx.stream()), &capturing));
  if (capturing != cudaStreamCaptureStatusNone)
    throw Error("path", "symmetric buffers of " + std::to_string(bytes) + " bytes registered before capture (make one "
                        "eager call of this size first)",
                "a call that needs them registered while the stream is being captured");
  CPATTN_CHECK_CUDA(cudaSetDevice(device_));
  CPATTN_CHECK_CUDA(cudaDeviceSynchronize());  // no kernel may still use the old window
  release_window();
  if (!host_error_) {
    CPATTN_CHECK_CUDA(cudaHostAlloc(&host_error_, sizeof(int), cudaHostAllocMapped | cudaHostAllocPortable));
    *static_cast<volatile int*>(host_error_) = 0;
    CPATTN_CHECK_CUDA(cudaHostGetDevicePointer(reinterpret_cast<void**>(&symmetric_.error), host_error_, 0));
    CPATTN_CHECK_CUDA(cudaMalloc(&symmetric_.state, 2 * sizeof(unsigned)));
  }
  // every rank asks for the same sizes in the same order, so the rounding agrees too
  const size_t granule = size_t{2} << 20;
  const size_t size = (std::max(bytes, 2 * window_bytes_) + granule - 1) / granule * granule;
  CPATTN_CHECK_NCCL(comm_, ncclMemAlloc(&window_memory_, size));
  CPATTN_CHECK_CUDA(cudaMemset(window_memory_, 0, size));  // flags start at call 0 on every rank
  CPATTN_CHECK_CUDA(cudaMemset(symmetric_.state, 0, 2 * sizeof(unsigned)));
  CPATTN_CHECK_CUDA(cudaDeviceSynchronize());
#if CPATTN_NCCL_WINDOWS
  ncclWindow_t window = nullptr;
  CPATTN_CHECK_NCCL(comm_, ncclCommWindowRegister(comm_, window_memory_, size, &window, NCCL_WIN_COLL_SYMMETRIC));
  window_ = window;
  nccl::peer_bases(window, size_, symmetric_.peers);
#endif
  symmetric_.bytes = window_bytes_ = size;
  symmetric_.timeout_ns = static_cast<unsigned long long>(std::chrono::nanoseconds(timeout_).count());
  return symmetric_;
}

void NcclComm::check_health() {
  if (aborted_) throw Error("comm", "a live NCCL communicator", "one aborted after a timeout or an asynchronous error");
  check_direct_barrier();
  ncclResult_t async = ncclSuccess;
  CPATTN_CHECK_NCCL(comm_, ncclCommGetAsyncError(comm_, &async));
  if (async != ncclSuccess && async != ncclInProgress) {
    ncclCommAbort(comm_);
    aborted_ = true;
    throw Error("NCCL", "no asynchronous error", ncclGetErrorString(async));
  }
}

void NcclComm::all_gather(const void* send, void* recv, size_t count, DType dtype, Context& ctx) {
  check_health();
  CPATTN_CHECK_NCCL(comm_, ncclAllGather(send, recv, count, nccl_type(dtype), comm_, stream_of(ctx)));
}

void NcclComm::reduce_scatter(const void* send, void* recv, size_t count, DType dtype, Context& ctx) {
  check_health();
  CPATTN_CHECK_NCCL(comm_, ncclReduceScatter(send, recv, count, nccl_type(dtype), ncclSum, comm_, stream_of(ctx)));
}

void NcclComm::all_reduce(const void* send, void* recv, size_t count, DType dtype, Context& ctx) {
  check_health();
  CPATTN_CHECK_NCCL(comm_, ncclAllReduce(send, recv, count, nccl_type(dtype), ncclSum, comm_, stream_of(ctx)));
}

void NcclComm::all_to_all(const void* send, void* recv, size_t count, DType dtype, Context& ctx) {
  check_health();
  const size_t bytes = count * dtype_size(dtype);
  const ncclDataType_t t = nccl_type(dtype);
  CPATTN_CHECK_NCCL(comm_, ncclGroupStart());
  for (int peer = 0; peer < size_; ++peer) {
    CPATTN_CHECK_NCCL(comm_, ncclSend(static_cast<const char*>(send) + peer * bytes, count, t, peer, comm_, stream_of(ctx)));
    CPATTN_CHECK_NCCL(comm_, ncclRecv(static_cast<char*>(recv) + peer * bytes, count, t, peer, comm_, stream_of(ctx)));
  }
  CPATTN_CHECK_NCCL(comm_, ncclGroupEnd());
}

void NcclComm::all_gather_host(const void* send, void* recv, size_t bytes) {
  check_health();
  CPATTN_CHECK_CUDA(cudaSetDevice(device_));
  char* staging = static_cast<char*>(host_exchange_.workspace(bytes * (static_cast<size_t>(size_) + 1)));
  cudaStream_t s = stream_of(host_exchange_);
  CPATTN_CHECK_CUDA(cudaMemcpyAsync(staging, send, bytes, cudaMemcpyHostToDevice, s));
  CPATTN_CHECK_NCCL(comm_, ncclAllGather(staging, staging + bytes, bytes, ncclUint8, comm_, s));
  // bounded wait: poll the stream and NCCL's async error instead of blocking forever
  const auto deadline = std::chrono::steady_clock::now() + timeout_;
  while (true) {
    const cudaError_t q = cudaStreamQuery(s);
    if (q == cudaSuccess) break;
    if (q != cudaErrorNotReady) CPATTN_CHECK_CUDA(q);
    check_health();
    if (std::chrono::steady_clock::now() > deadline) {
      ncclCommAbort(comm_);
      aborted_ = true;
      throw Error("comm", "every rank to join the collective within " + std::to_string(timeout_.count()) + " ms",
                  "a timeout: the NCCL communicator was aborted");
    }
    std::this_thread::sleep_for(std::chrono::microseconds(50));
  }
  CPATTN_CHECK_CUDA(cudaMemcpy(recv, staging + bytes, bytes * static_cast<size_t>(size_), cudaMemcpyDeviceToHost));
}

}  // namespace cpattn
