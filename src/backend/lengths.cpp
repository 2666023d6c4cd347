#include "lengths.hpp"

#include <algorithm>

#include "dtype_dispatch.hpp"

namespace cpattn::detail {

SeqLengthStats scan_lengths(const void* lengths, DType dt, int64_t stride, int64_t B, bool cu,
                            int64_t* offsets) {
  SeqLengthStats s;
  s.batch = B;
  const char* name = cu ? "cu_seqlens" : "lengths";
  check_index_dtype(dt, cu ? "cu_seqlens dtype" : "lengths dtype");
  int64_t pos = 0;
  if (cu) {
    pos = load_index(lengths, dt, 0);
    if (pos != 0) throw Error(name, "cu_seqlens[0] == 0", "cu_seqlens[0] = " + std::to_string(pos));
  }
  if (offsets) offsets[0] = 0;
  for (int64_t b = 0; b < B; ++b) {
    int64_t len;
    if (cu) {
      const int64_t next = load_index(lengths, dt, (b + 1) * stride);
      len = next - pos;
      if (len < 0)
        throw Error(name, "non-decreasing offsets",
                    "cu_seqlens[" + std::to_string(b + 1) + "] = " + std::to_string(next) + " < cu_seqlens[" +
                        std::to_string(b) + "] = " + std::to_string(pos));
    } else {
      len = load_index(lengths, dt, b * stride);
      if (len < 0)
        throw Error(name, "non-negative lengths", "lengths[" + std::to_string(b) + "] = " + std::to_string(len));
    }
    pos += len;
    s.max_len = std::max(s.max_len, len);
    if (offsets) offsets[b + 1] = pos;
  }
  s.total = pos;
  return s;
}

void check_lengths_fit(const SeqLengthStats& s, const PackArgs& a) {
  const char* name = a.cu_seqlens ? "cu_seqlens" : "lengths";
  const char* tokens = a.to_padded ? "x" : "out";
  // sum < T is valid: an engine pads its token batch, and the rows past the sum are not
  // read (pack) or not written (unpack)
  if (s.total > a.T)
    throw Error(name, std::string("lengths summing to at most T = ") + std::to_string(a.T) + " (" + tokens +
                          ".shape[0])",
                "a sum of " + std::to_string(s.total));
  if (!a.to_padded && s.max_len > a.L)
    throw Error(name, "lengths <= L = " + std::to_string(a.L) + " (packed.shape[1])",
                "a length of " + std::to_string(s.max_len));
}

}  // namespace cpattn::detail
