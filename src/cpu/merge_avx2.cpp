// The same kernels built with AVX2 + FMA + F16C (CMake adds the flags to this file only);
// merge.cpp picks them at run time where the CPU has those instructions.
#define CPATTN_CPU_ISA avx2
#include "merge_kernel.inc"
