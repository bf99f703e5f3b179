// The AVX-512 path: Philox on sixteen lanes, noise transforms on vectors.
#include "simd_targets.hpp"

#if defined(SCOREKIT_HAVE_AVX512_PATH)

#if !defined(__AVX512F__) || !defined(__AVX512DQ__) || !defined(__AVX512BW__) || !defined(__AVX512VL__)
#error "simd_avx512.cpp must be compiled with -mavx512f -mavx512dq -mavx512bw -mavx512vl"
#endif

#include <immintrin.h>

#define scorekit scorekit_avx512_impl
#include "simd_vec.hpp"

namespace scorekit {

struct Avx512 {
    static constexpr int N = 16;
    using U = vec::Vec<std::uint32_t, N>;
    // hi and lo 32-bit halves of a * m for sixteen lanes
    SCOREKIT_INLINE static void mulhilo(U a, std::uint32_t m, U& hi, U& lo) {
        const __m512i va = reinterpret_cast<__m512i>(a);
        const __m512i vm = _mm512_set1_epi32(static_cast<int>(m));
        const __m512i even = _mm512_mul_epu32(va, vm);                         // even lanes
        const __m512i odd = _mm512_mul_epu32(_mm512_srli_epi64(va, 32), vm);  // odd lanes
        hi = reinterpret_cast<U>(_mm512_mask_blend_epi32(0xAAAA, _mm512_srli_epi64(even, 32), odd));
        lo = reinterpret_cast<U>(_mm512_mask_blend_epi32(0xAAAA, even, _mm512_slli_epi64(odd, 32)));
    }
};

}  // namespace scorekit

#undef scorekit

SCOREKIT_DEFINE_FILL(avx512, scorekit_avx512_impl, Avx512, 2)

#endif  // SCOREKIT_HAVE_AVX512_PATH
