// libFuzzer target: merge_attn_states (also with an fp8 out), merge_attn_states_varlen and
// correct_attn_out (in place and out of place) on the CPU backend, on shapes, dtypes, layouts, LSE bases and NaN/inf patterns decoded from
// the input; each run is compared with the float64 reference and checks the guard bytes
// around every buffer (tests/support check_merge / check_correct).
#include <cstdio>
#include <cstdlib>

#include "fuzz_input.hpp"
#include "test_data.hpp"

using namespace cpattn;
using namespace cpattn::testing;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  fuzz::Input in(data, size);
  MergeCase c;
  const DType dtypes[] = {DType::f32, DType::f16, DType::bf16};
  const Layout layouts[] = {Layout::contiguous, Layout::padded, Layout::inner, Layout::unaligned, Layout::reversed};
  c.dtype = in.one_of(dtypes);
  c.lse_dtype = in.one_of(dtypes);
  c.N = in.pick(1, 40);
  c.B = in.pick(0, 6);
  c.H = in.pick(0, 6);
  c.D = in.pick(0, 300);
  c.layout = in.one_of(layouts);
  c.base = in.flag() ? LseBase::two : LseBase::e;
  c.adv.nan_lse = in.flag(), c.adv.pos_inf_lse = in.flag(), c.adv.neg_inf_lse = in.flag();
  c.adv.empty_shard_nan_data = in.flag(), c.adv.all_empty_rows = in.flag(), c.adv.kv_lens = in.flag();
  c.seed = static_cast<uint32_t>(in.pick(0, 65535));
  const int op = static_cast<int>(in.pick(0, 4));
  if (op == 3) {  // merge_attn_states_varlen: counts per row from the input, 0 included
    VarlenCase v;
    v.dtype = c.dtype, v.lse_dtype = c.lse_dtype, v.layout = c.layout, v.base = c.base, v.seed = c.seed;
    v.adv = c.adv;
    v.adv.kv_lens = false;
    v.H = c.H, v.D = c.D;
    v.counts.resize(static_cast<size_t>(c.B));
    for (int64_t& n : v.counts) n = in.pick(0, 40);
    v.unused = in.pick(0, 3);
    v.index_dtype = in.flag() ? DType::i64 : DType::i32;
    v.with_lse = in.flag();
    if (in.flag()) v.fp8_scale = in.flag() ? 1.0 / 512 : 0.5;
    const ::testing::AssertionResult r = check_merge_varlen(v, Device::cpu());
    if (!r) {
      std::fprintf(stderr, "merge_attn_states_varlen %s: %s\n", v.describe().c_str(), r.message());
      std::abort();
    }
    return 0;
  }
  const char* names[] = {"merge", "correct", "correct in place", "merge fp8"};
  const ::testing::AssertionResult r = op == 0   ? check_merge(c, Device::cpu())
                                       : op == 4 ? check_merge_fp8(c, Device::cpu(), in.flag() ? 1.0 / 1024 : 0.5)
                                                 : check_correct(c, Device::cpu(), /*in_place=*/op == 1);
  if (!r) {
    std::fprintf(stderr, "%s %s: %s\n", names[op == 4 ? 3 : op], c.describe().c_str(), r.message());
    std::abort();
  }
  return 0;
}
