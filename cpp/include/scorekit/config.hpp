// Portability macros shared by the host and device compilers.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>

#if defined(__CUDACC__)
#define SCOREKIT_HD __host__ __device__
#define SCOREKIT_INLINE __forceinline__
#else
#define SCOREKIT_HD
#if defined(__GNUC__) || defined(__clang__)
#define SCOREKIT_INLINE inline __attribute__((always_inline))
#else
#define SCOREKIT_INLINE inline
#endif
#endif

namespace scorekit {

// Bit reinterpretation that compiles on the host and under nvcc.
SCOREKIT_HD SCOREKIT_INLINE std::uint32_t bits_of(float x) {
#if defined(__CUDA_ARCH__)
    return static_cast<std::uint32_t>(__float_as_uint(x));
#else
    std::uint32_t u;
    std::memcpy(&u, &x, sizeof u);
    return u;
#endif
}

SCOREKIT_HD SCOREKIT_INLINE float float_of(std::uint32_t u) {
#if defined(__CUDA_ARCH__)
    return __uint_as_float(u);
#else
    float x;
    std::memcpy(&x, &u, sizeof x);
    return x;
#endif
}

SCOREKIT_HD SCOREKIT_INLINE std::uint64_t bits_of(double x) {
#if defined(__CUDA_ARCH__)
    return static_cast<std::uint64_t>(__double_as_longlong(x));
#else
    std::uint64_t u;
    std::memcpy(&u, &x, sizeof u);
    return u;
#endif
}

SCOREKIT_HD SCOREKIT_INLINE double double_of(std::uint64_t u) {
#if defined(__CUDA_ARCH__)
    return __longlong_as_double(static_cast<long long>(u));
#else
    double x;
    std::memcpy(&x, &u, sizeof x);
    return x;
#endif
}

}  // namespace scorekit

namespace scorekit {

// Branch-free choice c ? a : b for floating-point values (the noise transforms
// select on random data, where a branch would mispredict half the time).
SCOREKIT_HD SCOREKIT_INLINE float select(bool c, float a, float b) {
    const std::uint32_t m = 0u - static_cast<std::uint32_t>(c);
    return float_of((bits_of(a) & m) | (bits_of(b) & ~m));
}

SCOREKIT_HD SCOREKIT_INLINE double select(bool c, double a, double b) {
    const std::uint64_t m = 0ull - static_cast<std::uint64_t>(c);
    return double_of((bits_of(a) & m) | (bits_of(b) & ~m));
}

// Correctly rounded square root (IEEE 754 requires it of every backend). The
// host path uses the compiler builtin, inlined as one instruction, so no
// out-of-line std::sqrt is ever shared between files built for different
// instruction sets.
SCOREKIT_HD SCOREKIT_INLINE float sqrt_of(float x) {
#if defined(__CUDA_ARCH__)
    return ::sqrtf(x);
#elif defined(__GNUC__) || defined(__clang__)
    return __builtin_sqrtf(x);
#else
    return std::sqrt(x);
#endif
}

SCOREKIT_HD SCOREKIT_INLINE double sqrt_of(double x) {
#if defined(__CUDA_ARCH__)
    return ::sqrt(x);
#elif defined(__GNUC__) || defined(__clang__)
    return __builtin_sqrt(x);
#else
    return std::sqrt(x);
#endif
}

// x with its sign flipped when c holds (exact).
SCOREKIT_HD SCOREKIT_INLINE float flip_sign(bool c, float x) {
    return float_of(bits_of(x) ^ (static_cast<std::uint32_t>(c) << 31));
}

SCOREKIT_HD SCOREKIT_INLINE double flip_sign(bool c, double x) {
    return double_of(bits_of(x) ^ (static_cast<std::uint64_t>(c) << 63));
}

}  // namespace scorekit
