// Deterministic elementary functions for the noise transforms.
//
// Plain IEEE additions and multiplications in a fixed order (the build turns
// off floating-point contraction), so every compiler, instruction set and
// device produces the same bits. Domains are what Box-Muller needs: log on
// (0, 1], and sin/cos of 2*pi*u for u in [0, 1].
//
// float:  log after Cephes logf (about 1 ulp); sin/cos after Cephes sinf/cosf
//         on [-pi/4, pi/4].
// double: log after fdlibm e_log.c; sin/cos after fdlibm __kernel_sin and
//         __kernel_cos on [-pi/4, pi/4] (under 1 ulp each).
//
// Every function is a template over R, one value or a vector of lanes (see
// lanes.hpp), with the same operations in the same order for both: a SIMD
// lane computes exactly what the scalar function computes.
#pragma once

#include "config.hpp"
#include "lanes.hpp"

namespace scorekit {
namespace detmath {

// ---------------------------------------------------------------- float ---

// log(2^fe (1 + m)) for m in [sqrt(1/2) - 1, sqrt(2) - 1) and a small integer fe.
template <class R>
SCOREKIT_HD SCOREKIT_INLINE R log_f32_reduced(R m, R fe) {
    const R z = m * m;
    R p = m * 7.0376836292e-2f - 1.1514610310e-1f;
    p = p * m + 1.1676998740e-1f;
    p = p * m - 1.2420140846e-1f;
    p = p * m + 1.4249322787e-1f;
    p = p * m - 1.6668057665e-1f;
    p = p * m + 2.0000714765e-1f;
    p = p * m - 2.4999993993e-1f;
    p = p * m + 3.3333331174e-1f;
    R y = p * m * z;
    y = y + -2.12194440e-4f * fe;
    y = y + -0.5f * z;
    R r = m + y;
    r = r + 0.693359375f * fe;
    return r;
}

// Natural logarithm of positive, finite, normal floats. x = 2^fe (1 + m) with
// 1 + m in [sqrt(1/2), sqrt(2)), split on the bits of x with integer operations
// only: with c the bits of sqrt(1/2) (0x3f3504f3) and t = bits(x) - c + 2^30
// (no wrap for positive finite x), t >> 23 is fe + 128 (the exponent field less
// 126, less one more where the mantissa lies below c's: the subtraction's
// borrow), and c + (t mod 2^23) are the bits of 1 + m. Both are exact; fe, a
// small integer, is read as a float through the bits of 2^23 + fe + 128.
template <class R>
SCOREKIT_HD SCOREKIT_INLINE R log_f32(R x) {
    using L = Lanes<R>;
    const auto t = L::bits(x) + 0x00cafb0du;  // bits(x) - 0x3f3504f3 + 0x40000000
    const R fe = L::from_bits((t >> 23) + 0x4b000000u) - 8388736.0f;  // 2^23 + 128
    const R m = L::from_bits((t & 0x007fffffu) + 0x3f3504f3u) - 1.0f;  // exact
    return log_f32_reduced(m, fe);
}

template <class R>
SCOREKIT_HD SCOREKIT_INLINE R sin_kernel_f32(R x) {  // |x| <= pi/4
    const R z = x * x;
    R p = z * -1.9515295891e-4f + 8.3321608736e-3f;
    p = p * z - 1.6666654611e-1f;
    return p * z * x + x;
}

template <class R>
SCOREKIT_HD SCOREKIT_INLINE R cos_kernel_f32(R x) {  // |x| <= pi/4
    const R z = x * x;
    R p = z * 2.443315711809948e-5f - 1.388731625493765e-3f;
    p = p * z + 4.166664568298827e-2f;
    return p * z * z - 0.5f * z + 1.0f;
}

// ---------------------------------------------------------------- double ---

// log(2^dk (1 + f)) for 1 + f in (sqrt(1/2), sqrt(2)] and an integer dk.
template <class R>
SCOREKIT_HD SCOREKIT_INLINE R log_f64_reduced(R f, R dk) {
    constexpr double ln2_hi = 6.93147180369123816490e-01;
    constexpr double ln2_lo = 1.90821492927058770002e-10;
    constexpr double Lg1 = 6.666666666666735130e-01;
    constexpr double Lg2 = 3.999999999940941908e-01;
    constexpr double Lg3 = 2.857142874366239149e-01;
    constexpr double Lg4 = 2.222219843214978396e-01;
    constexpr double Lg5 = 1.818357216161805012e-01;
    constexpr double Lg6 = 1.531383769920937332e-01;
    constexpr double Lg7 = 1.479819860511658591e-01;
    const R s = f / (2.0 + f);
    const R z = s * s;
    const R w = z * z;
    const R t1 = w * (Lg2 + w * (Lg4 + w * Lg6));
    const R t2 = z * (Lg1 + w * (Lg3 + w * (Lg5 + w * Lg7)));
    const R sum = t2 + t1;
    const R hfsq = 0.5 * f * f;
    return dk * ln2_hi - ((hfsq - (s * (hfsq + sum) + dk * ln2_lo)) - f);
}

// Natural logarithm of positive, finite, normal doubles. x = 2^dk m with m in
// (sqrt(1/2), sqrt(2)], split on the bits of x as log_f32 splits a float: with
// c the bits of the smallest such m (0x3fe6a09e667f3bce) and t = bits(x) - c +
// 2^62, t >> 52 is dk + 1024 and c + (t mod 2^52) are the bits of m; dk is read
// through the bits of 2^52 + dk + 1024 (no integer conversion).
template <class R>
SCOREKIT_HD SCOREKIT_INLINE R log_f64(R x) {
    using L = Lanes<R>;
    const auto t = L::bits(x) + std::uint64_t{0x00195f619980c432ull};  // - c + 2^62
    const R dk = L::from_bits((t >> 52) + std::uint64_t{0x4330000000000000ull}) -
                 4503599627371520.0;  // 2^52 + 1024
    const R m = L::from_bits((t & std::uint64_t{0x000fffffffffffffull}) +
                             std::uint64_t{0x3fe6a09e667f3bceull});
    return log_f64_reduced(m - 1.0, dk);
}

template <class R>
SCOREKIT_HD SCOREKIT_INLINE R sin_kernel_f64(R x) {  // |x| <= pi/4
    constexpr double S1 = -1.66666666666666324348e-01;
    constexpr double S2 = 8.33333333332248946124e-03;
    constexpr double S3 = -1.98412698298579493134e-04;
    constexpr double S4 = 2.75573137070700676789e-06;
    constexpr double S5 = -2.50507602534068634195e-08;
    constexpr double S6 = 1.58969099521155010221e-10;
    const R z = x * x;
    const R v = z * x;
    const R r = S2 + z * (S3 + z * (S4 + z * (S5 + z * S6)));
    return x + v * (S1 + z * r);
}

template <class R>
SCOREKIT_HD SCOREKIT_INLINE R cos_kernel_f64(R x) {  // |x| <= pi/4
    constexpr double C1 = 4.16666666666666019037e-02;
    constexpr double C2 = -1.38888888888741095749e-03;
    constexpr double C3 = 2.48015872894767294178e-05;
    constexpr double C4 = -2.75573143513906633035e-07;
    constexpr double C5 = 2.08757232129817482790e-09;
    constexpr double C6 = -1.13596475577881948265e-11;
    const R z = x * x;
    const R r = z * (C1 + z * (C2 + z * (C3 + z * (C4 + z * (C5 + z * C6)))));
    const R hz = 0.5 * z;
    const R w = 1.0 - hz;
    return w + (((1.0 - w) - hz) + z * r);
}

// ------------------------------------------------- by element type ---

template <class E>
struct ForElement;
template <>
struct ForElement<float> {
    static constexpr float two_pi = 6.28318530717958647692f;
    template <class R> SCOREKIT_HD SCOREKIT_INLINE static R log(R x) { return log_f32(x); }
    template <class R> SCOREKIT_HD SCOREKIT_INLINE static R sin_kernel(R x) { return sin_kernel_f32(x); }
    template <class R> SCOREKIT_HD SCOREKIT_INLINE static R cos_kernel(R x) { return cos_kernel_f32(x); }
};
template <>
struct ForElement<double> {
    static constexpr double two_pi = 6.28318530717958647692;
    template <class R> SCOREKIT_HD SCOREKIT_INLINE static R log(R x) { return log_f64(x); }
    template <class R> SCOREKIT_HD SCOREKIT_INLINE static R sin_kernel(R x) { return sin_kernel_f64(x); }
    template <class R> SCOREKIT_HD SCOREKIT_INLINE static R cos_kernel(R x) { return cos_kernel_f64(x); }
};

template <class R>
SCOREKIT_HD SCOREKIT_INLINE R log(R x) {
    return ForElement<elem_t<R>>::log(x);
}

// ------------------------------------------------------------- sincos 2pi ---

// (s, c) = (sin, cos)(theta + q pi/2) from the kernels at theta, given the
// quadrant's flags: q = 0, 1, 2, 3 give (sk, ck), (ck, -sk), (-sk, -ck),
// (-ck, sk), and q = 4 is q = 0 again.
template <class R, class M>
SCOREKIT_HD SCOREKIT_INLINE void quadrant_sincos(R theta, M odd, M negate_s, M negate_c, R& s,
                                                 R& c) {
    using L = Lanes<R>;
    using F = ForElement<elem_t<R>>;
    const R sk = F::sin_kernel(theta);
    const R ck = F::cos_kernel(theta);
    s = L::flip_sign(negate_s, L::select(odd, ck, sk));
    c = L::flip_sign(negate_c, L::select(odd, sk, ck));
}

// s = sin(2 pi u), c = cos(2 pi u) for u in [0, 1]. The reduction is exact:
// u - q/4 is representable for every u the uniform transforms produce.
template <class R>
SCOREKIT_HD SCOREKIT_INLINE void sincos_2pi(R u, R& s, R& c) {
    using L = Lanes<R>;
    using E = elem_t<R>;
    const R one = L::splat(E(1)), zero = L::splat(E(0));
    // quadrant q in {0, .., 4} (4 is 0 again), held in R so the whole
    // transform stays in one register type
    const R q = L::select(u >= E(0.125), one, zero) + L::select(u >= E(0.375), one, zero) +
                L::select(u >= E(0.625), one, zero) + L::select(u >= E(0.875), one, zero);
    const R t = u - q * E(0.25);                      // |t| <= 1/8, exact
    const R theta = t * ForElement<E>::two_pi;        // |theta| <= pi/4
    quadrant_sincos(theta, (q == E(1)) | (q == E(3)), (q == E(2)) | (q == E(3)),
                    (q == E(1)) | (q == E(2)), s, c);
}

// sincos_2pi(u) for the float32 uniform of a Philox word w, u = (m + 1/2) 2^-23
// with m = w >> 9, worked out on the word's bits: the same quadrant q and the
// same exact t = u - q/4, so the same bits, without an integer conversion or
// floating-point comparisons. q = round(4 u) counts the bounds 1/8, 3/8, 5/8,
// 7/8 that u reaches: (m + 2^20) >> 21. And t 2^24 = 2m + 1 - q 2^22 is an odd
// integer of magnitude below 2^21, read as a float through the bits of
// 1.5 * 2^23 + t 2^24 (whose exponent it leaves alone).
template <class R>
SCOREKIT_HD SCOREKIT_INLINE void sincos_2pi_of_word(ulanes_t<R> w, R& s, R& c) {
    using L = Lanes<R>;
    static_assert(sizeof(elem_t<R>) == 4, "float32 uniforms only");
    const auto q = ((w >> 9) + 0x100000u) >> 21;
    const auto k_bits = (((w >> 8) | 1u) + 0x4b400000u) - (q << 22);
    const R t = (L::from_bits(k_bits) - 12582912.0f) * 5.9604644775390625e-08f;  // 2^-24
    const R theta = t * ForElement<float>::two_pi;
    quadrant_sincos(theta, (q & 1u) != 0u, (q & 2u) != 0u, ((q + 1u) & 2u) != 0u, s, c);
}

}  // namespace detmath
}  // namespace scorekit
