#pragma once
// NCCL symmetric windows, seen from plain C++.
#include <nccl.h>

namespace cpattn::nccl {

// How many ranks of `comm` (this one included) can load and store each other's memory:
// NCCL's LSA team, the ranks of one NVLink domain.
int load_store_team_size(ncclComm_t comm);

// host_bases[p] = rank p's buffer of `window` (at offset 0) as this rank addresses it over
// NVLink, for p in [0, ranks). The window must be registered with NCCL_WIN_COLL_SYMMETRIC
// on a communicator whose ranks all share NCCL's load/store-accessible team.
void peer_bases(ncclWindow_t window, int ranks, char** host_bases);

}  // namespace cpattn::nccl
