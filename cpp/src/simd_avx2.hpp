// AVX2 noise path for x86-64 (GCC or Clang). simd_avx2.cpp is the one file
// compiled with -mavx2; it includes the shared headers under a namespace of
// its own, so none of its inline code can stand in for the baseline copies.
#pragma once

#include <cstdint>

#if (defined(__x86_64__) || defined(_M_X64)) && (defined(__GNUC__) || defined(__clang__))
#define SCOREKIT_HAVE_AVX2_PATH 1

// kind: 0 normal, 1 uniform, 2 rademacher. Fills elements [start, start + n)
// of stream (seed, counter), the same bits as fill_range.
void scorekit_avx2_fill_f32(int kind, std::uint64_t seed, std::uint64_t counter,
                            std::uint64_t start, std::uint64_t n, float* out);
void scorekit_avx2_fill_f64(int kind, std::uint64_t seed, std::uint64_t counter,
                            std::uint64_t start, std::uint64_t n, double* out);
#endif
