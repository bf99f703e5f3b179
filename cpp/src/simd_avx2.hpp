// AVX2 noise path for x86-64 (GCC or Clang). simd_avx2.cpp is the one file
// compiled with -mavx2, and CMake defines SCOREKIT_HAVE_AVX2_PATH exactly when
// it adds that flag. The file includes the shared headers under a namespace of
// its own, so none of their inline functions can stand in for the baseline
// copies; the headers call compiler builtins rather than std:: math (whose
// out-of-line copies are shared by every file) for the same reason.
#pragma once

#include <cstdint>

#if defined(SCOREKIT_HAVE_AVX2_PATH)
// kind: 0 normal, 1 uniform, 2 rademacher. Fills elements [start, start + n)
// of stream (seed, counter), the same bits as fill_range.
void scorekit_avx2_fill_f32(int kind, std::uint64_t seed, std::uint64_t counter,
                            std::uint64_t start, std::uint64_t n, float* out);
void scorekit_avx2_fill_f64(int kind, std::uint64_t seed, std::uint64_t counter,
                            std::uint64_t start, std::uint64_t n, double* out);
#endif
