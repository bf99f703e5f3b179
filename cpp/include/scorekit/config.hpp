// Portability macros shared by the host and device compilers.
#pragma once

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
