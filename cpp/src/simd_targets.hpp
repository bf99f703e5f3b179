// The instruction-set paths of the CPU backend. Each is one file compiled with
// its target flags (simd_avx2.cpp with -mavx2, simd_avx512.cpp with the
// AVX-512 F/DQ/BW/VL flags), and CMake defines SCOREKIT_HAVE_<ISA>_PATH exactly
// when it builds that file. Each file includes the shared headers under a
// namespace of its own, so none of their inline functions can stand in for the
// baseline copies; the headers call compiler builtins rather than std:: math
// (whose out-of-line copies are shared by every file) for the same reason.
#pragma once

#include <cstdint>

// kind: 0 normal, 1 uniform, 2 rademacher. Fills elements [start, start + n)
// of stream (seed, counter), the same bits as fill_range.
#define SCOREKIT_DECLARE_FILL(isa)                                                        \
    void scorekit_##isa##_fill_f32(int kind, std::uint64_t seed, std::uint64_t counter, \
                                   std::uint64_t start, std::uint64_t n, float* out);  \
    void scorekit_##isa##_fill_f64(int kind, std::uint64_t seed, std::uint64_t counter, \
                                   std::uint64_t start, std::uint64_t n, double* out);

#if defined(SCOREKIT_HAVE_AVX2_PATH)
SCOREKIT_DECLARE_FILL(avx2)
#endif
#if defined(SCOREKIT_HAVE_AVX512_PATH)
SCOREKIT_DECLARE_FILL(avx512)
#endif

// The definitions, in each path's file.
#define SCOREKIT_DEFINE_FILL(isa, impl, Isa, G)                                            \
    void scorekit_##isa##_fill_f32(int kind, std::uint64_t seed, std::uint64_t counter, \
                                   std::uint64_t start, std::uint64_t n, float* out) {  \
        impl::vec::fill<impl::Isa, G, float>(kind, seed, counter, start, n, out);        \
    }                                                                                    \
    void scorekit_##isa##_fill_f64(int kind, std::uint64_t seed, std::uint64_t counter, \
                                   std::uint64_t start, std::uint64_t n, double* out) { \
        impl::vec::fill<impl::Isa, G, double>(kind, seed, counter, start, n, out);       \
    }
