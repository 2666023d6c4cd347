#pragma once
// CPATTN_CHECK_CUDA: every CUDA runtime call (the CUDA backend's and NcclComm's) goes
// through it; failures become cpattn::Error naming the call, the CUDA error's name and its
// description. Users read these messages: no source paths in them (the call's text says
// where).
#include <cuda_runtime.h>

#include <string>

#include "cpattn/error.hpp"

#define CPATTN_CHECK_CUDA(call)                                                                  \
  do {                                                                                           \
    const cudaError_t cpattn_err_ = (call);                                                      \
    if (cpattn_err_ != cudaSuccess)                                                              \
      throw ::cpattn::Error("CUDA", "cudaSuccess from " #call,                                   \
                            std::string(cudaGetErrorName(cpattn_err_)) + " (" +                  \
                                cudaGetErrorString(cpattn_err_) + ")");                          \
  } while (0)

// After a launch: configuration errors surface here, asynchronous faults at the next sync.
#define CPATTN_CHECK_LAUNCH() CPATTN_CHECK_CUDA(cudaGetLastError())
