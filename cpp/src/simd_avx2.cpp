// Philox4x32-10 on eight blocks at once with AVX2, and fill_range built on it;
// the transforms of noise.hpp are inlined here and vectorised for AVX2.
#include <cmath>
#include <cstdint>
#include <cstring>

#include "simd_avx2.hpp"

#if defined(SCOREKIT_HAVE_AVX2_PATH)

#if !defined(__AVX2__)
#error "simd_avx2.cpp must be compiled with -mavx2"
#endif

#include <immintrin.h>

#define scorekit scorekit_avx2_impl
#include "scorekit/noise.hpp"

namespace scorekit {
namespace {

// hi and lo 32-bit halves of a * m for eight lanes.
SCOREKIT_INLINE void mulhilo8(__m256i a, __m256i m, __m256i& hi, __m256i& lo) {
    const __m256i even = _mm256_mul_epu32(a, m);                         // lanes 0, 2, 4, 6
    const __m256i odd = _mm256_mul_epu32(_mm256_srli_epi64(a, 32), m);  // lanes 1, 3, 5, 7
    hi = _mm256_blend_epi32(_mm256_srli_epi64(even, 32), odd, 0xAA);
    lo = _mm256_blend_epi32(even, _mm256_slli_epi64(odd, 32), 0xAA);
}

// Words of blocks j0 .. j0 + 7 into W[0 .. 32), in block order.
SCOREKIT_INLINE void philox8(const Stream& st, std::uint64_t j0, std::uint32_t* W) {
    alignas(32) std::uint32_t lo[8], hi[8];
    for (int l = 0; l < 8; ++l) {
        const std::uint64_t j = j0 + static_cast<std::uint64_t>(l);
        lo[l] = static_cast<std::uint32_t>(j);
        hi[l] = static_cast<std::uint32_t>(j >> 32);
    }
    __m256i c0 = _mm256_load_si256(reinterpret_cast<const __m256i*>(lo));
    __m256i c1 = _mm256_load_si256(reinterpret_cast<const __m256i*>(hi));
    __m256i c2 = _mm256_set1_epi32(static_cast<int>(static_cast<std::uint32_t>(st.counter)));
    __m256i c3 = _mm256_set1_epi32(static_cast<int>(static_cast<std::uint32_t>(st.counter >> 32)));
    std::uint32_t k0 = static_cast<std::uint32_t>(st.seed);
    std::uint32_t k1 = static_cast<std::uint32_t>(st.seed >> 32);
    const __m256i m0 = _mm256_set1_epi32(static_cast<int>(philox_detail::kMul0));
    const __m256i m1 = _mm256_set1_epi32(static_cast<int>(philox_detail::kMul1));
    for (int round = 0; round < 10; ++round) {
        __m256i hi0, lo0, hi1, lo1;
        mulhilo8(c0, m0, hi0, lo0);
        mulhilo8(c2, m1, hi1, lo1);
        const __m256i key0 = _mm256_set1_epi32(static_cast<int>(k0));
        const __m256i key1 = _mm256_set1_epi32(static_cast<int>(k1));
        c0 = _mm256_xor_si256(_mm256_xor_si256(hi1, c1), key0);
        c1 = lo1;
        c2 = _mm256_xor_si256(_mm256_xor_si256(hi0, c3), key1);
        c3 = lo0;
        k0 += philox_detail::kWeyl0;
        k1 += philox_detail::kWeyl1;
    }
    // transpose (word k of lane l) -> W[4 l + k]
    const __m256i t0 = _mm256_unpacklo_epi32(c0, c1);  // blocks 0, 1 | 4, 5: words 0, 1
    const __m256i t1 = _mm256_unpackhi_epi32(c0, c1);  // blocks 2, 3 | 6, 7: words 0, 1
    const __m256i t2 = _mm256_unpacklo_epi32(c2, c3);
    const __m256i t3 = _mm256_unpackhi_epi32(c2, c3);
    const __m256i b04 = _mm256_unpacklo_epi64(t0, t2);
    const __m256i b15 = _mm256_unpackhi_epi64(t0, t2);
    const __m256i b26 = _mm256_unpacklo_epi64(t1, t3);
    const __m256i b37 = _mm256_unpackhi_epi64(t1, t3);
    __m256i* out = reinterpret_cast<__m256i*>(W);
    _mm256_storeu_si256(out + 0, _mm256_permute2x128_si256(b04, b15, 0x20));
    _mm256_storeu_si256(out + 1, _mm256_permute2x128_si256(b26, b37, 0x20));
    _mm256_storeu_si256(out + 2, _mm256_permute2x128_si256(b04, b15, 0x31));
    _mm256_storeu_si256(out + 3, _mm256_permute2x128_si256(b26, b37, 0x31));
}

struct Avx2Words {
    SCOREKIT_INLINE static void run(const Stream& st, std::uint64_t j0,
                                                  std::int64_t nb, std::uint32_t* W) {
        std::int64_t b = 0;
        for (; b + 8 <= nb; b += 8) philox8(st, j0 + static_cast<std::uint64_t>(b), W + 4 * b);
        block_words(st, j0 + static_cast<std::uint64_t>(b), nb - b, W + 4 * b);
    }
};

template <class T>
void fill(int kind, std::uint64_t seed, std::uint64_t counter, std::uint64_t start,
          std::uint64_t n, T* out) {
    const Stream st{seed, counter};
    switch (kind) {
        case 0: fill_range<NormalBlock<T>, T, Avx2Words>(st, start, n, out); break;
        case 1: fill_range<UniformBlock<T>, T, Avx2Words>(st, start, n, out); break;
        default: fill_range<RademacherBlock<T>, T, Avx2Words>(st, start, n, out); break;
    }
}

}  // namespace
}  // namespace scorekit

#undef scorekit

void scorekit_avx2_fill_f32(int kind, std::uint64_t seed, std::uint64_t counter,
                            std::uint64_t start, std::uint64_t n, float* out) {
    scorekit_avx2_impl::fill<float>(kind, seed, counter, start, n, out);
}

void scorekit_avx2_fill_f64(int kind, std::uint64_t seed, std::uint64_t counter,
                            std::uint64_t start, std::uint64_t n, double* out) {
    scorekit_avx2_impl::fill<double>(kind, seed, counter, start, n, out);
}

#endif  // SCOREKIT_HAVE_AVX2_PATH
