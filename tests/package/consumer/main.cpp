#include <cpattn/cpattn.hpp>

#include <cmath>
#include <cstdio>
#include <vector>

int main() {
  // two partials of one row: equal lses, so the merge is their mean
  std::vector<float> outs = {1.0f, 3.0f}, lses = {0.5f, 0.5f}, out(1), lse(1);
  cpattn::TensorView l(lse.data(), cpattn::DType::f32, {1, 1});
  cpattn::merge_attn_states(cpattn::TensorView(outs.data(), cpattn::DType::f32, {2, 1, 1, 1}),
                            cpattn::TensorView(lses.data(), cpattn::DType::f32, {2, 1, 1}),
                            cpattn::TensorView(out.data(), cpattn::DType::f32, {1, 1, 1}), &l);
  std::printf("cpattn %s: merged %g lse %g\n", CPATTN_VERSION, out[0], lse[0]);
  return std::fabs(out[0] - 2.0f) < 1e-6f && std::fabs(lse[0] - (0.5f + std::log(2.0f))) < 1e-6f ? 0 : 1;
}
