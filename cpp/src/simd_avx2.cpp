// The AVX2 path: Philox on eight lanes, noise transforms on vectors.
#include "simd_targets.hpp"

#if defined(SCOREKIT_HAVE_AVX2_PATH)

#if !defined(__AVX2__)
#error "simd_avx2.cpp must be compiled with -mavx2"
#endif

#include <immintrin.h>

#define scorekit scorekit_avx2_impl
#include "simd_vec.hpp"

namespace scorekit {

struct Avx2 {
    static constexpr int N = 8;
    using U = vec::Vec<std::uint32_t, N>;
    // hi and lo 32-bit halves of a * m for eight lanes
    SCOREKIT_INLINE static void mulhilo(U a, std::uint32_t m, U& hi, U& lo) {
        const __m256i va = reinterpret_cast<__m256i>(a);
        const __m256i vm = _mm256_set1_epi32(static_cast<int>(m));
        const __m256i even = _mm256_mul_epu32(va, vm);                         // lanes 0, 2, 4, 6
        const __m256i odd = _mm256_mul_epu32(_mm256_srli_epi64(va, 32), vm);  // lanes 1, 3, 5, 7
        hi = reinterpret_cast<U>(_mm256_blend_epi32(_mm256_srli_epi64(even, 32), odd, 0xAA));
        lo = reinterpret_cast<U>(_mm256_blend_epi32(even, _mm256_slli_epi64(odd, 32), 0xAA));
    }
};

}  // namespace scorekit

#undef scorekit

SCOREKIT_DEFINE_FILL(avx2, scorekit_avx2_impl, Avx2, 2)

#endif  // SCOREKIT_HAVE_AVX2_PATH
