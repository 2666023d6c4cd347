#pragma once
// Shared by the CPU and CUDA tests: tensors that live on either device with a host mirror,
// in several layouts, and checkers that run an op and compare it with the f64 reference.
#include <gtest/gtest.h>

#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "cpattn/cpattn.hpp"
#include "cpattn/reference.hpp"

namespace cpattn::testing {

enum class Layout {
  contiguous,
  padded,     // every stride padded by an odd amount: arbitrary B/H strides
  inner,      // last-dim stride 2 as well: the scalar path
  unaligned,  // contiguous, data one element past a 256-byte boundary
  reversed,   // dim 0 walked with a negative stride
};
std::string layout_name(Layout l);

bool has_gpu();  // a CUDA build and at least one device
// Why a test needing `count` GPUs cannot run here ("" when it can): a build without CUDA, or
// fewer CUDA devices visible.
std::string gpus_missing(int count = 1);

// The one way a GPU test skips itself, saying why, where it cannot run (CI has no GPU).
#define CPATTN_REQUIRE_GPUS(count)                                                      \
  do {                                                                                  \
    const std::string cpattn_missing_ = ::cpattn::testing::gpus_missing(count);         \
    if (!cpattn_missing_.empty()) GTEST_SKIP() << cpattn_missing_;                      \
  } while (0)
#define CPATTN_REQUIRE_GPU() CPATTN_REQUIRE_GPUS(1)

class TestTensor {
 public:
  TestTensor(DType dtype, std::vector<int64_t> shape, Device device = {}, Layout layout = Layout::contiguous);
  ~TestTensor();
  TestTensor(const TestTensor&) = delete;
  TestTensor& operator=(const TestTensor&) = delete;

  TensorView view() const;       // on the device
  TensorView host_view() const;  // the host mirror, same layout
  const std::vector<int64_t>& shape() const { return shape_; }
  int64_t numel() const;

  void fill_normal(std::mt19937& rng, double scale = 1.0);
  void fill(double value);
  void set(const std::vector<int64_t>& index, double value);  // host mirror
  double get(const std::vector<int64_t>& index) const;        // host mirror
  void upload();    // host mirror -> device (no-op on CPU)
  void download();  // device -> host mirror (no-op on CPU)
  void poison();    // NaN / 0x5A bytes on the device, everywhere in the allocation
  // true when every byte of the allocation outside the view's elements is still poison
  bool guard_intact();

 private:
  int64_t offset(const std::vector<int64_t>& index) const;
  DType dtype_;
  std::vector<int64_t> shape_, strides_;
  Device device_;
  int64_t base_ = 0;  // element offset of element [0, ...] in the allocation
  size_t bytes_ = 0;
  std::vector<unsigned char> host_;
  void* device_ptr_ = nullptr;
};

// Which adversarial LSE/data patterns a merge/correct case plants.
struct Adversarial {
  bool nan_lse = false, pos_inf_lse = false, neg_inf_lse = false;
  bool empty_shard_nan_data = false;  // -inf lse with NaN/inf in that partial's data
  bool all_empty_rows = false;        // every partial of some rows empty
  bool kv_lens = false;               // mark empty partials through kv_lens (lse left finite)
  static Adversarial all() { return {true, true, true, true, true, false}; }
};

struct MergeCase {
  DType dtype = DType::f32;
  DType lse_dtype = DType::f32;
  int64_t N = 2, B = 3, H = 4, D = 8;
  Layout layout = Layout::contiguous;
  LseBase base = LseBase::e;
  Adversarial adv{};
  uint32_t seed = 1;
  std::string describe() const;
};

double tolerance(DType dtype);  // relative tolerance of one rounding to dtype plus f32 math

inline void PrintTo(const MergeCase& c, std::ostream* os) { *os << c.describe(); }

::testing::AssertionResult check_merge(const MergeCase& c, Device device);
::testing::AssertionResult check_correct(const MergeCase& c, Device device, bool in_place);

// merge_attn_states with an fp8_e4m3 out and a per-tensor scale: the case's inputs, out
// fp8 [B, H, D] in the case's layout; `scale` small enough saturates some elements.
::testing::AssertionResult check_merge_fp8(const MergeCase& c, Device device, double scale);

// merge_attn_states_varlen: row b has counts[b] partials (0 included); outs [P, H, D] with
// `unused` extra partials no row names (NaN data and lses, never to be read), in the case's
// layout; offsets [B + 1] of index_dtype. fp8_scale > 0: an fp8_e4m3 out with that scale.
struct VarlenCase {
  DType dtype = DType::bf16, lse_dtype = DType::f32, index_dtype = DType::i32;
  std::vector<int64_t> counts{2, 0, 3};
  int64_t H = 4, D = 8, unused = 2;
  Layout layout = Layout::contiguous;
  LseBase base = LseBase::e;
  Adversarial adv{};  // kv_lens is not part of varlen
  double fp8_scale = 0;
  bool with_lse = true;
  uint32_t seed = 1;
  std::string describe() const;
};
inline void PrintTo(const VarlenCase& c, std::ostream* os) { *os << c.describe(); }
::testing::AssertionResult check_merge_varlen(const VarlenCase& c, Device device);

struct PackCase {
  DType dtype = DType::bf16;
  std::vector<int64_t> lengths;
  std::vector<int64_t> features{8};  // trailing dims
  int64_t max_len = -1;              // -1: max(lengths)
  int64_t extra_tokens = 0;          // T = sum(lengths) + extra_tokens (a padded token batch)
  bool cu_seqlens = false;
  DType index_dtype = DType::i32;
  Layout layout = Layout::contiguous;
  double pad_value = -1.0 / 0.0;
  uint32_t seed = 1;
  std::string describe() const;
};

inline void PrintTo(const PackCase& c, std::ostream* os) { *os << c.describe(); }

::testing::AssertionResult check_pack(const PackCase& c, Device device);
::testing::AssertionResult check_unpack(const PackCase& c, Device device);

}  // namespace cpattn::testing
