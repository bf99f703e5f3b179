// Counter-based noise: every value is a pure function of (seed, counter, flat
// element index), independent of threads, tiling, instruction set or device.
//
//   float32  element i -> block i / 4, word i % 4
//            uniform    u = ((w >> 9) + 0.5) * 2^-23
//            normal     Box-Muller on (w0, w1) -> (z0, z1), (w2, w3) -> (z2, z3):
//                       r = sqrt(-2 ln u(w_first)), z_first = r cos(2 pi u(w_second)),
//                       z_second = r sin(2 pi u(w_second))
//   float64  element i -> block i / 2, words (w0, w1) if i even, (w2, w3) if odd
//            uniform    u = ((a << 20 | b >> 12) + 0.5) * 2^-52
//            normal     block j: Box-Muller on u(w0, w1), u(w2, w3) -> elements 2j, 2j+1
//   rademacher (both)   element i -> block i / 4, word i % 4; +1 if the top bit is 0, else -1
#pragma once

#include <cmath>

#include "config.hpp"
#include "detmath.hpp"
#include "philox.hpp"

namespace scorekit {

SCOREKIT_HD SCOREKIT_INLINE float uniform_f32(std::uint32_t w) {
    return (static_cast<float>(w >> 9) + 0.5f) * 1.1920928955078125e-07f;  // 2^-23
}

SCOREKIT_HD SCOREKIT_INLINE double uniform_f64(std::uint32_t a, std::uint32_t b) {
    const std::uint64_t m = (static_cast<std::uint64_t>(a) << 20) | (b >> 12);
    return (static_cast<double>(m) + 0.5) * 2.220446049250313080847e-16;  // 2^-52
}

template <class T>
SCOREKIT_HD SCOREKIT_INLINE T rademacher_of(std::uint32_t w) {
    return (w >> 31) ? T(-1) : T(1);
}

template <class T>
SCOREKIT_HD SCOREKIT_INLINE void box_muller(T u_radius, T u_angle, T& z_cos, T& z_sin) {
    using std::sqrt;
    const T r = sqrt(T(-2) * detmath::log(u_radius));
    T s, c;
    detmath::sincos_2pi(u_angle, s, c);
    z_cos = r * c;
    z_sin = r * s;
}

// Per-block generators: kPerBlock values for elements kPerBlock*j ... of a stream.
template <class T>
struct NormalBlock;

template <>
struct NormalBlock<float> {
    static constexpr int kPerBlock = 4;
    SCOREKIT_HD SCOREKIT_INLINE static void make(const Stream& st, std::uint64_t j, float* z) {
        const Words4 b = st.block(j);
        box_muller(uniform_f32(b.w[0]), uniform_f32(b.w[1]), z[0], z[1]);
        box_muller(uniform_f32(b.w[2]), uniform_f32(b.w[3]), z[2], z[3]);
    }
};

template <>
struct NormalBlock<double> {
    static constexpr int kPerBlock = 2;
    SCOREKIT_HD SCOREKIT_INLINE static void make(const Stream& st, std::uint64_t j, double* z) {
        const Words4 b = st.block(j);
        box_muller(uniform_f64(b.w[0], b.w[1]), uniform_f64(b.w[2], b.w[3]), z[0], z[1]);
    }
};

template <class T>
struct UniformBlock;

template <>
struct UniformBlock<float> {
    static constexpr int kPerBlock = 4;
    SCOREKIT_HD SCOREKIT_INLINE static void make(const Stream& st, std::uint64_t j, float* u) {
        const Words4 b = st.block(j);
        for (int k = 0; k < 4; ++k) u[k] = uniform_f32(b.w[k]);
    }
};

template <>
struct UniformBlock<double> {
    static constexpr int kPerBlock = 2;
    SCOREKIT_HD SCOREKIT_INLINE static void make(const Stream& st, std::uint64_t j, double* u) {
        const Words4 b = st.block(j);
        u[0] = uniform_f64(b.w[0], b.w[1]);
        u[1] = uniform_f64(b.w[2], b.w[3]);
    }
};

template <class T>
struct RademacherBlock {
    static constexpr int kPerBlock = 4;
    SCOREKIT_HD SCOREKIT_INLINE static void make(const Stream& st, std::uint64_t j, T* v) {
        const Words4 b = st.block(j);
        for (int k = 0; k < 4; ++k) v[k] = rademacher_of<T>(b.w[k]);
    }
};

// Writes elements [start, start + n) of a stream into out[0 .. n). Handles a
// start and an end that fall inside a block.
template <class Block, class T>
SCOREKIT_HD inline void fill_range(const Stream& st, std::uint64_t start, std::uint64_t n, T* out) {
    constexpr std::uint64_t K = Block::kPerBlock;
    if (n == 0) return;
    T tmp[Block::kPerBlock];
    std::uint64_t j = start / K;
    std::uint64_t skip = start % K;
    std::uint64_t done = 0;
    if (skip != 0) {
        Block::make(st, j, tmp);
        for (std::uint64_t k = skip; k < K && done < n; ++k) out[done++] = tmp[k];
        ++j;
    }
    while (n - done >= K) {
        Block::make(st, j, out + done);
        done += K;
        ++j;
    }
    if (done < n) {
        Block::make(st, j, tmp);
        for (std::uint64_t k = 0; done < n; ++k) out[done++] = tmp[k];
    }
}

}  // namespace scorekit
