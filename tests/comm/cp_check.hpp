#pragma once
// End-to-end check of the cp_* functions on any Communicator: every rank holds real partial
// attention over its KV shard (empty shards carry garbage), the cp function combines them,
// and the rank's result is compared with unsplit f64 attention.
#include <gtest/gtest.h>

#include "cpattn/cpattn.hpp"
#include "cpattn/reference.hpp"
#include "test_data.hpp"

namespace cpattn::testing {

struct CpCase {
  CpOp op = CpOp::rs;
  DType dtype = DType::f32;
  int64_t B = 6, S = 23, H = 4, D = 16;
  bool use_kv_lens = false;  // empty shards: garbage lse + kv_lens, else -inf lse + NaN out
  bool return_lse = true;
  LseBase base = LseBase::e;
  CpPath path = CpPath::automatic;
  uint32_t seed = 1;
};


// Runs on one rank; returns a failure message or "".
std::string run_cp_case(const CpCase& c, Communicator& comm, Device device, const reference::CpAttention& problem);

}  // namespace cpattn::testing
