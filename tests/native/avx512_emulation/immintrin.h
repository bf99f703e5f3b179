// Stand-in for <immintrin.h> with the five AVX-512F intrinsics that
// cpp/src/simd_avx512.cpp uses, written from the Intel Intrinsics Guide's
// pseudocode, so that file can run (slowly, lane by lane) on a CPU without
// AVX-512. Used only by tests/test_cross_arch.py.
#pragma once

#include <cstdint>

typedef long long __m512i __attribute__((vector_size(64)));
typedef unsigned short __mmask16;

namespace avx512_emulation {
union V {
    __m512i v;
    std::uint32_t u32[16];
    std::int32_t i32[16];
    std::uint64_t u64[8];
};
}  // namespace avx512_emulation

static inline __m512i _mm512_set1_epi32(int a) {
    avx512_emulation::V r;
    for (int j = 0; j < 16; ++j) r.i32[j] = a;
    return r.v;
}

// unsigned 32 x 32 -> 64 multiply of the even 32-bit lanes
static inline __m512i _mm512_mul_epu32(__m512i a, __m512i b) {
    avx512_emulation::V x{a}, y{b}, r;
    for (int j = 0; j < 8; ++j)
        r.u64[j] = static_cast<std::uint64_t>(x.u32[2 * j]) * static_cast<std::uint64_t>(y.u32[2 * j]);
    return r.v;
}

static inline __m512i _mm512_srli_epi64(__m512i a, unsigned imm) {
    avx512_emulation::V x{a}, r;
    for (int j = 0; j < 8; ++j) r.u64[j] = imm > 63 ? 0 : x.u64[j] >> imm;
    return r.v;
}

static inline __m512i _mm512_slli_epi64(__m512i a, unsigned imm) {
    avx512_emulation::V x{a}, r;
    for (int j = 0; j < 8; ++j) r.u64[j] = imm > 63 ? 0 : x.u64[j] << imm;
    return r.v;
}

// lane j: b[j] where bit j of k is set, else a[j]
static inline __m512i _mm512_mask_blend_epi32(__mmask16 k, __m512i a, __m512i b) {
    avx512_emulation::V x{a}, y{b}, r;
    for (int j = 0; j < 16; ++j) r.i32[j] = ((k >> j) & 1) ? y.i32[j] : x.i32[j];
    return r.v;
}
