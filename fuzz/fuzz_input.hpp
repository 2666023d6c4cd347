#pragma once
// Reads the fuzzer's bytes as a stream of small choices; past the end every read is 0, so
// every input decodes to some case. And the tensor descriptors the validation targets share.
#include <cstddef>
#include <cstdint>
#include <vector>

#include "cpattn/error.hpp"
#include "cpattn/tensor.hpp"

namespace cpattn::fuzz {

class Input {
 public:
  Input(const uint8_t* data, size_t size) : data_(data), size_(size) {}
  uint8_t byte() { return pos_ < size_ ? data_[pos_++] : 0; }
  int64_t pick(int64_t lo, int64_t hi) {  // in [lo, hi]
    const uint16_t v = static_cast<uint16_t>(byte() | byte() << 8);
    return lo + static_cast<int64_t>(v % static_cast<uint64_t>(hi - lo + 1));
  }
  bool flag() { return byte() & 1; }
  template <class T, size_t K>
  T one_of(const T (&choices)[K]) { return choices[byte() % K]; }

 private:
  const uint8_t* data_;
  size_t size_, pos_ = 0;
};

// A size or stride: mostly small, else an edge of int32/int64 arithmetic.
inline int64_t extreme(Input& in) {
  const int64_t edges[] = {0, 1, 2, 3, -1, -2, 7, 64, 1000, int64_t{1} << 31, (int64_t{1} << 31) - 1,
                           int64_t{1} << 40, int64_t{1} << 62, -(int64_t{1} << 62), INT64_MAX, INT64_MIN};
  return in.flag() ? in.one_of(edges) : in.pick(-4, 12);
}

// A tensor descriptor of any dtype, rank (0-5), shape and strides (extreme values too), null
// or not, on the CPU or (one in eight) cuda:0. Its data is never read.
struct Desc {
  std::vector<int64_t> shape, strides;
  TensorView view;
};

inline Desc make(Input& in, char* base) {
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

}  // namespace cpattn::fuzz
