// libFuzzer target: the validation layer on arbitrary descriptors: shapes and strides up to
// +-2^62, negative and zero strides, every dtype, null and non-null data, mismatched ranks.
// Nothing is read or written (only the descriptors are checked: make_*_args); the property
// is that every input either passes or raises cpattn::Error, with no undefined behaviour
// (signed or pointer overflow in size arithmetic) under UBSan.
#include <cstdint>
#include <vector>

#include "core/validate.hpp"
#include "cpattn/cpattn.hpp"
#include "fuzz_input.hpp"

using namespace cpattn;

namespace {

int64_t extreme(fuzz::Input& in) {
  const int64_t edges[] = {0, 1, 2, 3, -1, -2, 7, 64, 1000, int64_t{1} << 31, (int64_t{1} << 31) - 1,
                           int64_t{1} << 40, int64_t{1} << 62, -(int64_t{1} << 62), INT64_MAX, INT64_MIN};
  return in.flag() ? in.one_of(edges) : in.pick(-4, 12);
}

struct Desc {
  std::vector<int64_t> shape, strides;
  TensorView view;
};

Desc make(fuzz::Input& in, char* base) {
  const DType dtypes[] = {DType::f64, DType::f32,      DType::f16,      DType::bf16, DType::fp8_e4m3,
                          DType::fp8_e5m2, DType::i64, DType::i32,      DType::i16,  DType::i8,  DType::u8};
  Desc d;
  const int ndim = static_cast<int>(in.pick(0, 5));
  for (int i = 0; i < ndim; ++i) d.shape.push_back(extreme(in)), d.strides.push_back(extreme(in));
  void* data = in.flag() ? nullptr : base + in.pick(0, 64);
  const Device device = in.byte() % 8 == 0 ? Device::cuda(0) : Device::cpu();
  try {
    d.view = TensorView(data, in.one_of(dtypes), d.shape, d.strides, device);
  } catch (const Error&) {
    d.view = TensorView(data, DType::f32, {}, device);  // the constructor itself rejected it
  }
  return d;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  fuzz::Input in(data, size);
  static char buffer[4096];
  Desc a = make(in, buffer), b = make(in, buffer + 1024), c = make(in, buffer + 2048), e = make(in, buffer + 3072);
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
      case 1: detail::make_correct_args(a.view, b.view, extreme(in), c.view, out_lse, mo); break;
      case 2: detail::make_pack_args(a.view, b.view, c.view, po); break;
      default: detail::make_unpack_args(a.view, b.view, c.view, po); break;
    }
  } catch (const Error&) {
  }
  return 0;
}
