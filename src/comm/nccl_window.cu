// The addresses of an NCCL symmetric window's peer buffers as this rank sees them, read
// once per registration with NCCL's device API (ncclGetPeerPointer), so that the cp
// kernels take plain pointers and need no NCCL headers.
#include <cuda_runtime.h>
#include <nccl.h>
#include <nccl_device.h>

#include "../backend/check_cuda.hpp"
#include "nccl_window.hpp"

namespace cpattn::nccl {
namespace {

// read_peer_bases: peer_bases[p] = rank p's base of `window` as this rank addresses it, for
// p < ranks (<= 32). peer_bases: device memory [ranks]. Grid: one block of 32 threads; thread
// p reads rank p's pointer.
__global__ void read_peer_bases(ncclWindow_t window, int ranks, char** peer_bases) {
  const int peer = static_cast<int>(threadIdx.x);
  if (peer < ranks) peer_bases[peer] = static_cast<char*>(ncclGetPeerPointer(window, 0, peer));
}

}  // namespace

int load_store_team_size(ncclComm_t comm) { return ncclTeamLsa(comm).nRanks; }

void peer_bases(ncclWindow_t window, int ranks, char** host_bases) {
  char** device_bases = nullptr;
  CPATTN_CHECK_CUDA(cudaMalloc(&device_bases, sizeof(char*) * static_cast<size_t>(ranks)));
  read_peer_bases<<<1, 32>>>(window, ranks, device_bases);
  const cudaError_t launched = cudaGetLastError();
  const cudaError_t copied = cudaMemcpy(host_bases, device_bases, sizeof(char*) * static_cast<size_t>(ranks),
                                        cudaMemcpyDeviceToHost);
  cudaFree(device_bases);
  CPATTN_CHECK_CUDA(launched);
  CPATTN_CHECK_CUDA(copied);
}

}  // namespace cpattn::nccl
