// pack_seq / unpack_seq on the CPU: one prefix scan, then rows copied in parallel.
#include <cstring>
#include <vector>

#include "../backend/lengths.hpp"
#include "backend.hpp"

namespace cpattn::cpu {

void pack(const detail::PackArgs& a) {
  std::vector<int64_t> start(static_cast<size_t>(a.B + 1));
  const auto stats = detail::scan_lengths(a.lengths, a.lengths_dtype, a.lengths_stride, a.B, a.cu_seqlens,
                                          start.data());
  detail::check_lengths_fit(stats, a);
  if (a.row_bytes == 0 || a.B == 0 || a.L == 0) return;
  const int64_t rows = a.B * a.L;
  if (a.to_padded) {
    std::vector<char> pad_row(static_cast<size_t>(a.row_bytes));
    for (int64_t i = 0; i < a.row_bytes; i += a.elem_bytes)
      std::memcpy(pad_row.data() + i, &a.pad_bits, static_cast<size_t>(a.elem_bytes));
#pragma omp parallel for schedule(static) if (rows * a.row_bytes >= kParallelMinElements * 4)
    for (int64_t row = 0; row < rows; ++row) {
      const int64_t b = row / a.L, t = row % a.L;
      char* dst = a.padded + b * a.padded_sb + t * a.padded_sl;
      const int64_t len = start[b + 1] - start[b];
      const char* src = t < len ? a.tokens + (start[b] + t) * a.token_stride : pad_row.data();
      std::memcpy(dst, src, static_cast<size_t>(a.row_bytes));
    }
  } else {
#pragma omp parallel for schedule(static) if (rows * a.row_bytes >= kParallelMinElements * 4)
    for (int64_t row = 0; row < rows; ++row) {
      const int64_t b = row / a.L, t = row % a.L;
      if (t >= start[b + 1] - start[b]) continue;
      std::memcpy(a.tokens + (start[b] + t) * a.token_stride, a.padded + b * a.padded_sb + t * a.padded_sl,
                  static_cast<size_t>(a.row_bytes));
    }
  }
}

}  // namespace cpattn::cpu
