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
#include "lanes.hpp"
#include "philox.hpp"

namespace scorekit {

// The transforms below are templates over R, one value or a vector of lanes
// (lanes.hpp); U = ulanes_t<R> holds one Philox word per lane.

template <class R = float>
SCOREKIT_HD SCOREKIT_INLINE R uniform_f32(ulanes_t<R> w) {
    // ((w >> 9) + 0.5) 2^-23 = (1 + (w >> 9) 2^-23) - (1 - 2^-24), exact (24 bits), with
    // 1 + (w >> 9) 2^-23 by its bits: no integer conversion
    return Lanes<R>::from_bits((w >> 9) | 0x3f800000u) - 0.999999940395355224609375f;
}

template <class R = double>
SCOREKIT_HD SCOREKIT_INLINE R uniform_f64(ulanes_t<R> a, ulanes_t<R> b) {
    // 1 + m * 2^-52 by its bits, so no integer conversion is needed; every step is exact.
    const ulanes_t<R> m = (a << 20) | (b >> 12);
    return (Lanes<R>::from_bits(m | std::uint64_t{0x3ff0000000000000ull}) - 1.0) +
           1.1102230246251565404e-16;  // + 2^-53
}

// w holds a 32-bit word: +1 if its top bit is 0, else -1.
template <class R>
SCOREKIT_HD SCOREKIT_INLINE R rademacher_of(ulanes_t<R> w) {
    using L = Lanes<R>;
    return L::select((w >> 31) != 0u, L::splat(elem_t<R>(-1)), L::splat(elem_t<R>(1)));
}

template <class R>
SCOREKIT_HD SCOREKIT_INLINE R box_muller_radius(R u) {
    return Lanes<R>::sqrt(elem_t<R>(-2) * detmath::log(u));
}

template <class R>
SCOREKIT_HD SCOREKIT_INLINE void box_muller(R u_radius, R u_angle, R& z_cos, R& z_sin) {
    const R r = box_muller_radius(u_radius);
    R s, c;
    detmath::sincos_2pi(u_angle, s, c);
    z_cos = r * c;
    z_sin = r * s;
}

// box_muller(uniform_f32(w_radius), uniform_f32(w_angle), ..) with the angle's
// sine and cosine worked out on the word (detmath::sincos_2pi_of_word): the same bits.
template <class R>
SCOREKIT_HD SCOREKIT_INLINE void box_muller_f32(ulanes_t<R> w_radius, ulanes_t<R> w_angle,
                                                R& z_cos, R& z_sin) {
    const R r = box_muller_radius(uniform_f32<R>(w_radius));
    R s, c;
    detmath::sincos_2pi_of_word<R>(w_angle, s, c);
    z_cos = r * c;
    z_sin = r * s;
}

// Words of blocks [j0, j0 + nb): W[4 b + k] is word k of block j0 + b. S is
// a Stream or a KeyedStream (philox.hpp; the same blocks), as below.
template <class S>
SCOREKIT_HD SCOREKIT_INLINE void block_words(const S& st, std::uint64_t j0, std::int64_t nb,
                                             std::uint32_t* W) {
    for (std::int64_t b = 0; b < nb; ++b) {
        const Words4 w = st.block(j0 + static_cast<std::uint64_t>(b));
        for (int k = 0; k < 4; ++k) W[4 * b + k] = w.w[k];
    }
}

// Transforms of whole blocks. from_words(W, nb, out) maps the words of nb
// consecutive blocks to kPerBlock * nb values; its loops run over independent
// lanes, so a compiler may vectorise them without changing a bit.
template <class T>
struct NormalBlock;

template <>
struct NormalBlock<float> {
    static constexpr int kPerBlock = 4;
    // pair p = words (W[2p], W[2p+1]) -> z[2p] = r cos, z[2p+1] = r sin
    SCOREKIT_HD SCOREKIT_INLINE static void from_words(const std::uint32_t* W, std::int64_t nb,
                                                       float* z) {
        for (std::int64_t p = 0; p < 2 * nb; ++p)
            box_muller_f32<float>(W[2 * p], W[2 * p + 1], z[2 * p], z[2 * p + 1]);
    }
};

template <>
struct NormalBlock<double> {
    static constexpr int kPerBlock = 2;
    // block b: u(W[4b], W[4b+1]) gives the radius, u(W[4b+2], W[4b+3]) the angle
    // (In two passes over at most 16 blocks, a form compilers vectorise.)
    SCOREKIT_HD SCOREKIT_INLINE static void from_words(const std::uint32_t* W, std::int64_t nb,
                                                       double* z) {
        constexpr std::int64_t kStep = 16;
        for (std::int64_t b0 = 0; b0 < nb; b0 += kStep) {
            const std::int64_t m = nb - b0 < kStep ? nb - b0 : kStep;
            const std::uint32_t* w = W + 4 * b0;
            double ur[kStep], ua[kStep], zc[kStep], zs[kStep];
            for (std::int64_t b = 0; b < m; ++b) {
                ur[b] = uniform_f64(w[4 * b], w[4 * b + 1]);
                ua[b] = uniform_f64(w[4 * b + 2], w[4 * b + 3]);
            }
            for (std::int64_t b = 0; b < m; ++b) box_muller(ur[b], ua[b], zc[b], zs[b]);
            for (std::int64_t b = 0; b < m; ++b) {
                z[2 * (b0 + b)] = zc[b];
                z[2 * (b0 + b) + 1] = zs[b];
            }
        }
    }
};

template <class T>
struct UniformBlock;

template <>
struct UniformBlock<float> {
    static constexpr int kPerBlock = 4;
    SCOREKIT_HD SCOREKIT_INLINE static void from_words(const std::uint32_t* W, std::int64_t nb,
                                                       float* u) {
        for (std::int64_t i = 0; i < 4 * nb; ++i) u[i] = uniform_f32(W[i]);
    }
};

template <>
struct UniformBlock<double> {
    static constexpr int kPerBlock = 2;
    SCOREKIT_HD SCOREKIT_INLINE static void from_words(const std::uint32_t* W, std::int64_t nb,
                                                       double* u) {
        for (std::int64_t i = 0; i < 2 * nb; ++i) u[i] = uniform_f64(W[2 * i], W[2 * i + 1]);
    }
};

template <class T>
struct RademacherBlock {
    static constexpr int kPerBlock = 4;
    SCOREKIT_HD SCOREKIT_INLINE static void from_words(const std::uint32_t* W, std::int64_t nb,
                                                       T* v) {
        for (std::int64_t i = 0; i < 4 * nb; ++i) v[i] = rademacher_of<T>(W[i]);
    }
};

// The values of block j alone.
template <class Block, class T, class S>
SCOREKIT_HD SCOREKIT_INLINE void make_block(const S& st, std::uint64_t j, T* out) {
    std::uint32_t W[4];
    block_words(st, j, 1, W);
    Block::from_words(W, 1, out);
}

// Blocks per batch in ScalarBulk: words of a batch stay in registers or L1.
#if defined(__CUDA_ARCH__)
constexpr std::int64_t kFillBatchBlocks = 1;
#else
constexpr std::int64_t kFillBatchBlocks = 64;
#endif

// Writes the values of nb whole blocks from block j0 on: the portable loop
// over Stream::block and Block::from_words. SIMD backends supply their own
// Bulk with the same bits.
struct ScalarBulk {
    template <class Block, class T, class S>
    SCOREKIT_HD SCOREKIT_INLINE static void run(const S& st, std::uint64_t j0,
                                                std::int64_t nb, T* out) {
        std::uint32_t W[4 * kFillBatchBlocks];
        for (std::int64_t b = 0; b < nb; b += kFillBatchBlocks) {
            const std::int64_t m = nb - b < kFillBatchBlocks ? nb - b : kFillBatchBlocks;
            block_words(st, j0 + static_cast<std::uint64_t>(b), m, W);
            Block::from_words(W, m, out + b * Block::kPerBlock);
        }
    }
};

// Writes elements [start, start + n) of a stream into out[0 .. n). Handles a
// start and an end that fall inside a block; Bulk writes the whole blocks.
template <class Block, class T, class Bulk = ScalarBulk, class S>
SCOREKIT_HD SCOREKIT_INLINE void fill_range(const S& st, std::uint64_t start, std::uint64_t n,
                                            T* out) {
    constexpr std::uint64_t K = Block::kPerBlock;
    if (n == 0) return;
    T tmp[Block::kPerBlock];
    std::uint64_t j = start / K;
    const std::uint64_t skip = start % K;
    std::uint64_t done = 0;
    if (skip != 0) {
        make_block<Block>(st, j, tmp);
        for (std::uint64_t k = skip; k < K && done < n; ++k) out[done++] = tmp[k];
        ++j;
    }
    const std::uint64_t full = (n - done) / K;
    if (full > 0) {
        Bulk::template run<Block, T>(st, j, static_cast<std::int64_t>(full), out + done);
        done += full * K;
        j += full;
    }
    if (done < n) {
        make_block<Block>(st, j, tmp);
        for (std::uint64_t k = 0; done < n; ++k) out[done++] = tmp[k];
    }
}

}  // namespace scorekit
