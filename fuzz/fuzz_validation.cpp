// libFuzzer target: the validation layer on arbitrary descriptors: shapes and strides up to
// +-2^62, negative and zero strides, every dtype, null and non-null data, mismatched ranks.
// Nothing is read or written (only the descriptors are checked: make_*_args); the property
// is that every input either passes or raises cpattn::Error, with no undefined behaviour
// (signed or pointer overflow in size arithmetic) under UBSan.
#include <cstdint>

#include "core/validate.hpp"
#include "cpattn/cpattn.hpp"
#include "fuzz_input.hpp"

using namespace cpattn;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  fuzz::Input in(data, size);
  static char buffer[4096];
  fuzz::Desc a = fuzz::make(in, buffer), b = fuzz::make(in, buffer + 1024), c = fuzz::make(in, buffer + 2048),
             e = fuzz::make(in, buffer + 3072);
  MergeOptions mo;
  mo.lse_base = in.flag() ? LseBase::two : LseBase::e;
  if (in.flag()) mo.kv_lens = &e.view;
  PackOptions po;
  po.cu_seqlens = in.flag();
  po.pad_value = in.flag() ? 0.0 : -1.0 / 0.0;
  const TensorView* out_lse = in.flag() ? &e.view : nullptr;
  try {
    switch (in.byte() % 4) {
      case 0: detail::make_merge_args(a.view, b.view, c.view, out_lse, mo); break;
      case 1: detail::make_correct_args(a.view, b.view, fuzz::extreme(in), c.view, out_lse, mo); break;
      case 2: detail::make_pack_args(a.view, b.view, c.view, po); break;
      default: detail::make_unpack_args(a.view, b.view, c.view, po); break;
    }
  } catch (const Error&) {
  }
  return 0;
}
