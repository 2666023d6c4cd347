#include <gtest/gtest.h>

#include <thread>

#include "cpattn/cpattn.hpp"

namespace cpattn {
namespace {

TEST(Context, WorkspaceGrowsAndIsReused) {
  Context ctx;
  void* a = ctx.workspace(100);
  EXPECT_NE(a, nullptr);
  EXPECT_GE(ctx.workspace_size(), 100u);
  EXPECT_EQ(ctx.workspace(50), a);  // no reallocation when it fits
  ctx.reserve(1 << 20);
  EXPECT_GE(ctx.workspace_size(), size_t{1} << 20);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(ctx.workspace(1)) % 256, 0u);
}

TEST(Context, ZeroBytesNeverAllocates) {
  Context ctx;
  EXPECT_EQ(ctx.workspace(0), nullptr);  // e.g. pack with cu_seqlens inside a CUDA graph
  EXPECT_EQ(ctx.workspace_size(), 0u);
}

TEST(Context, DefaultIsPerThread) {
  Context* main_ctx = &Context::default_for(Device::cpu());
  EXPECT_EQ(main_ctx, &Context::default_for(Device::cpu()));
  Context* other = nullptr;
  std::thread([&] { other = &Context::default_for(Device::cpu()); }).join();
  EXPECT_NE(main_ctx, other);
}

TEST(Context, DeviceMismatchIsAClearError) {
  std::vector<float> outs(8), lses(2), out(4);
  auto run = [&](Context* ctx) {
    merge_attn_states(TensorView(outs.data(), DType::f32, {2, 1, 1, 4}), TensorView(lses.data(), DType::f32, {2, 1, 1}),
                      TensorView(out.data(), DType::f32, {1, 1, 4}), nullptr, {}, ctx);
  };
  Context cpu;
  EXPECT_NO_THROW(run(&cpu));
  // a CUDA context with CPU tensors: "ctx" on a CUDA build, "device" on a build without CUDA
  try {
    Context gpu(Device::cuda(0));
    run(&gpu);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_TRUE(e.argument() == "ctx" || e.argument() == "device") << e.what();
  }
}

}  // namespace
}  // namespace cpattn
