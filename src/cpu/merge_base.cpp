// The CPU merge/correct kernels for the baseline instruction set (any x86-64 / other CPU).
#define CPATTN_CPU_ISA base
#include "merge_kernel.inc"
