// libFuzzer target: pack_seq and unpack_seq on the CPU backend: lengths (zeros included),
// max_len truncation, cu_seqlens, index and element dtypes (fp8 and uint8 included),
// trailing dims, layouts and pad values decoded from the input, against the reference with
// guard bytes around every buffer (tests/support check_pack / check_unpack).
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <limits>

#include "fuzz_input.hpp"
#include "test_data.hpp"

using namespace cpattn;
using namespace cpattn::testing;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  fuzz::Input in(data, size);
  PackCase c;
  const DType dtypes[] = {DType::f32, DType::f16, DType::bf16, DType::fp8_e4m3, DType::fp8_e5m2, DType::u8,
                          DType::i32, DType::f64};
  const Layout layouts[] = {Layout::contiguous, Layout::padded, Layout::inner, Layout::unaligned};
  c.dtype = in.one_of(dtypes);
  c.lengths.resize(static_cast<size_t>(in.pick(0, 12)));
  for (auto& l : c.lengths) l = in.pick(0, 9);
  c.features.resize(static_cast<size_t>(in.pick(0, 2)));
  for (auto& f : c.features) f = in.pick(1, 40);
  c.max_len = in.flag() ? in.pick(0, 10) : -1;
  c.cu_seqlens = in.flag();
  c.index_dtype = in.flag() ? DType::i64 : DType::i32;
  c.layout = in.one_of(layouts);
  const double pads[] = {0.0, -1.5, 7.0, 255.0, -std::numeric_limits<double>::infinity()};
  c.pad_value = in.one_of(pads);
  c.seed = static_cast<uint32_t>(in.pick(0, 65535));
  const bool unpack = in.flag();
  ::testing::AssertionResult r = ::testing::AssertionSuccess();
  try {
    r = unpack ? check_unpack(c, Device::cpu()) : check_pack(c, Device::cpu());
  } catch (const Error& e) {
    // documented rejections: a pad the dtype cannot hold; unpack of sequences longer than L
    int64_t longest = 0;
    for (int64_t l : c.lengths) longest = std::max(longest, l);
    const bool too_long = unpack && c.max_len >= 0 && longest > c.max_len &&
                          (e.argument() == "lengths" || e.argument() == "cu_seqlens");
    if (e.argument() != "pad_value" && !too_long) throw;
  }
  if (!r) {
    std::fprintf(stderr, "%s %s: %s\n", unpack ? "unpack" : "pack", c.describe().c_str(), r.message());
    std::abort();
  }
  return 0;
}
