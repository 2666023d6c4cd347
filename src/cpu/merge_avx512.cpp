// The same kernels built with AVX-512 (F, BW) + FMA + F16C (CMake adds the flags to this file
// only); merge.cpp picks them at run time where the CPU has those instructions: 16 lanes per
// instruction halve the f32 <-> bf16/f16 conversion work, which bounds correct on bf16.
#define CPATTN_CPU_ISA avx512
#include "merge_kernel.inc"
