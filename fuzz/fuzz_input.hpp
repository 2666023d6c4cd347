#pragma once
// Reads the fuzzer's bytes as a stream of small choices; past the end every read is 0, so
// every input decodes to some case.
#include <cstddef>
#include <cstdint>

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

}  // namespace cpattn::fuzz
