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
#pragma once

#include "config.hpp"

namespace scorekit {
namespace detmath {

// ---------------------------------------------------------------- float ---

// Natural logarithm of a positive, finite, normal float.
SCOREKIT_HD SCOREKIT_INLINE float log(float x) {
    const std::uint32_t ix = bits_of(x);
    int e = static_cast<int>((ix >> 23) & 0xffu) - 126;  // x = m * 2^e, m in [0.5, 1)
    const float mant = float_of((ix & 0x007fffffu) | 0x3f000000u);
    const bool low = mant < 0.707106781186547524f;  // then use 2m in [1, sqrt 2)
    e -= static_cast<int>(low);
    const float m = select(low, mant + mant, mant) - 1.0f;  // exact
    const float z = m * m;
    float p = 7.0376836292e-2f;
    p = p * m - 1.1514610310e-1f;
    p = p * m + 1.1676998740e-1f;
    p = p * m - 1.2420140846e-1f;
    p = p * m + 1.4249322787e-1f;
    p = p * m - 1.6668057665e-1f;
    p = p * m + 2.0000714765e-1f;
    p = p * m - 2.4999993993e-1f;
    p = p * m + 3.3333331174e-1f;
    float y = p * m * z;
    const float fe = static_cast<float>(e);
    y = y + -2.12194440e-4f * fe;
    y = y + -0.5f * z;
    float r = m + y;
    r = r + 0.693359375f * fe;
    return r;
}

SCOREKIT_HD SCOREKIT_INLINE float sin_kernel(float x) {  // |x| <= pi/4
    const float z = x * x;
    float p = -1.9515295891e-4f;
    p = p * z + 8.3321608736e-3f;
    p = p * z - 1.6666654611e-1f;
    return p * z * x + x;
}

SCOREKIT_HD SCOREKIT_INLINE float cos_kernel(float x) {  // |x| <= pi/4
    const float z = x * x;
    float p = 2.443315711809948e-5f;
    p = p * z - 1.388731625493765e-3f;
    p = p * z + 4.166664568298827e-2f;
    return p * z * z - 0.5f * z + 1.0f;
}

// ---------------------------------------------------------------- double ---

// Natural logarithm of a positive, finite, normal double.
SCOREKIT_HD SCOREKIT_INLINE double log(double x) {
    constexpr double ln2_hi = 6.93147180369123816490e-01;
    constexpr double ln2_lo = 1.90821492927058770002e-10;
    constexpr double Lg1 = 6.666666666666735130e-01;
    constexpr double Lg2 = 3.999999999940941908e-01;
    constexpr double Lg3 = 2.857142874366239149e-01;
    constexpr double Lg4 = 2.222219843214978396e-01;
    constexpr double Lg5 = 1.818357216161805012e-01;
    constexpr double Lg6 = 1.531383769920937332e-01;
    constexpr double Lg7 = 1.479819860511658591e-01;
    const std::uint64_t ix = bits_of(x);
    // x = mant * 2^k with mant in [1, 2); the exponent field is read as a double
    // through its bits (2^52 + e - 2^52), so no integer conversion is needed.
    const double e = double_of(0x4330000000000000ull | (ix >> 52)) - 4503599627370496.0;
    const double mant = double_of((ix & 0x000fffffffffffffull) | 0x3ff0000000000000ull);
    const bool high = mant > 1.41421356237309504880;  // then use m/2 in (sqrt 1/2, 1)
    const double dk = e - select(high, 1022.0, 1023.0);
    const double m = select(high, mant * 0.5, mant);
    const double f = m - 1.0;
    const double s = f / (2.0 + f);
    const double z = s * s;
    const double w = z * z;
    const double t1 = w * (Lg2 + w * (Lg4 + w * Lg6));
    const double t2 = z * (Lg1 + w * (Lg3 + w * (Lg5 + w * Lg7)));
    const double R = t2 + t1;
    const double hfsq = 0.5 * f * f;
    return dk * ln2_hi - ((hfsq - (s * (hfsq + R) + dk * ln2_lo)) - f);
}

SCOREKIT_HD SCOREKIT_INLINE double sin_kernel(double x) {  // |x| <= pi/4
    constexpr double S1 = -1.66666666666666324348e-01;
    constexpr double S2 = 8.33333333332248946124e-03;
    constexpr double S3 = -1.98412698298579493134e-04;
    constexpr double S4 = 2.75573137070700676789e-06;
    constexpr double S5 = -2.50507602534068634195e-08;
    constexpr double S6 = 1.58969099521155010221e-10;
    const double z = x * x;
    const double v = z * x;
    const double r = S2 + z * (S3 + z * (S4 + z * (S5 + z * S6)));
    return x + v * (S1 + z * r);
}

SCOREKIT_HD SCOREKIT_INLINE double cos_kernel(double x) {  // |x| <= pi/4
    constexpr double C1 = 4.16666666666666019037e-02;
    constexpr double C2 = -1.38888888888741095749e-03;
    constexpr double C3 = 2.48015872894767294178e-05;
    constexpr double C4 = -2.75573143513906633035e-07;
    constexpr double C5 = 2.08757232129817482790e-09;
    constexpr double C6 = -1.13596475577881948265e-11;
    const double z = x * x;
    const double r = z * (C1 + z * (C2 + z * (C3 + z * (C4 + z * (C5 + z * C6)))));
    const double hz = 0.5 * z;
    const double w = 1.0 - hz;
    return w + (((1.0 - w) - hz) + z * r);
}

// ------------------------------------------------------------- sincos 2pi ---

template <class T>
struct TwoPi;
template <>
struct TwoPi<float> {
    static constexpr float value = 6.28318530717958647692f;
};
template <>
struct TwoPi<double> {
    static constexpr double value = 6.28318530717958647692;
};

// s = sin(2 pi u), c = cos(2 pi u) for u in [0, 1]. The reduction is exact:
// u - q/4 is representable for every u the uniform transforms produce.
template <class T>
SCOREKIT_HD SCOREKIT_INLINE void sincos_2pi(T u, T& s, T& c) {
    // quadrant q in {0, .., 4} (4 is 0 again), held in T so the whole
    // transform stays in one register type
    const T q = select(u >= T(0.125), T(1), T(0)) + select(u >= T(0.375), T(1), T(0)) +
                select(u >= T(0.625), T(1), T(0)) + select(u >= T(0.875), T(1), T(0));
    const T t = u - q * T(0.25);          // |t| <= 1/8, exact
    const T theta = t * TwoPi<T>::value;  // |theta| <= pi/4
    const T sk = sin_kernel(theta);
    const T ck = cos_kernel(theta);
    // quadrant q: (s, c) = (sk, ck), (ck, -sk), (-sk, -ck), (-ck, sk)
    const bool odd = (q == T(1)) | (q == T(3));
    s = flip_sign((q == T(2)) | (q == T(3)), select(odd, ck, sk));
    c = flip_sign((q == T(1)) | (q == T(2)), select(odd, sk, ck));
}

}  // namespace detmath
}  // namespace scorekit
