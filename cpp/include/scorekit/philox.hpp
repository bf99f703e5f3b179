// Philox4x32-10 counter-based generator (Salmon, Moraes, Dror, Shaw 2011).
//
// Stream layout: key = (seed mod 2^32, seed >> 32); block j of stream `counter`
// is Philox applied to the counter words (j mod 2^32, j >> 32,
// counter mod 2^32, counter >> 32).
#pragma once

#include "config.hpp"

namespace scorekit {

struct Words4 {
    std::uint32_t w[4];
};

namespace philox_detail {
constexpr std::uint32_t kMul0 = 0xD2511F53u;
constexpr std::uint32_t kMul1 = 0xCD9E8D57u;
constexpr std::uint32_t kWeyl0 = 0x9E3779B9u;
constexpr std::uint32_t kWeyl1 = 0xBB67AE85u;

SCOREKIT_HD SCOREKIT_INLINE void mulhilo(std::uint32_t a, std::uint32_t b, std::uint32_t& hi,
                                         std::uint32_t& lo) {
#if defined(__CUDA_ARCH__)
    // one 32 x 32 -> 64 multiply (IMAD.WIDE.U32); the 64-bit product of two
    // zero-extended words below compiles to that plus an add on some targets
    unsigned long long p;
    asm("mul.wide.u32 %0, %1, %2;" : "=l"(p) : "r"(a), "r"(b));
#else
    const std::uint64_t p = static_cast<std::uint64_t>(a) * static_cast<std::uint64_t>(b);
#endif
    hi = static_cast<std::uint32_t>(p >> 32);
    lo = static_cast<std::uint32_t>(p);
}
}  // namespace philox_detail

// One round on counter c with the round's key (k0, k1).
SCOREKIT_HD SCOREKIT_INLINE Words4 philox_round(Words4 c, std::uint32_t k0, std::uint32_t k1) {
    using namespace philox_detail;
    std::uint32_t hi0, lo0, hi1, lo1;
    mulhilo(kMul0, c.w[0], hi0, lo0);
    mulhilo(kMul1, c.w[2], hi1, lo1);
    return {{hi1 ^ c.w[1] ^ k0, lo1, hi0 ^ c.w[3] ^ k1, lo0}};
}

// Ten rounds on counter c with key (k0, k1); the key is bumped between rounds.
SCOREKIT_HD SCOREKIT_INLINE Words4 philox4x32_10(Words4 c, std::uint32_t k0, std::uint32_t k1) {
    using namespace philox_detail;
#if defined(__CUDA_ARCH__)
#pragma unroll
#endif
    for (int round = 0; round < 10; ++round) {
        c = philox_round(c, k0, k1);
        k0 += kWeyl0;
        k1 += kWeyl1;
    }
    return c;
}

SCOREKIT_HD SCOREKIT_INLINE Words4 counter_words(std::uint64_t j, std::uint64_t counter) {
    return {{static_cast<std::uint32_t>(j), static_cast<std::uint32_t>(j >> 32),
             static_cast<std::uint32_t>(counter), static_cast<std::uint32_t>(counter >> 32)}};
}

// The position of one stream: everything a kernel needs to regenerate block j.
struct Stream {
    std::uint64_t seed;
    std::uint64_t counter;

    SCOREKIT_HD SCOREKIT_INLINE Words4 block(std::uint64_t j) const {
        return philox4x32_10(counter_words(j, counter), static_cast<std::uint32_t>(seed),
                             static_cast<std::uint32_t>(seed >> 32));
    }
};

// A Stream with the keys of its ten rounds worked out once, the same blocks. The
// GPU's fill kernel and perturb's and noisy_affine_step's take it as a
// parameter: given the Stream, the compiler adds the keys up again for every
// block there. Where it keeps the sums in uniform registers instead (the
// reductions' value loops, langevin_step), the Stream serves better: given
// the keys as parameters, it reloads them for every block.
struct KeyedStream {
    std::uint64_t counter;
    std::uint32_t k0[10], k1[10];

    KeyedStream() = default;
    SCOREKIT_HD KeyedStream(const Stream& st) : counter(st.counter) {  // NOLINT: implicit
        std::uint32_t a = static_cast<std::uint32_t>(st.seed);
        std::uint32_t b = static_cast<std::uint32_t>(st.seed >> 32);
        for (int round = 0; round < 10; ++round) {
            k0[round] = a;
            k1[round] = b;
            a += philox_detail::kWeyl0;
            b += philox_detail::kWeyl1;
        }
    }

    SCOREKIT_HD SCOREKIT_INLINE Words4 block(std::uint64_t j) const {
        Words4 c = counter_words(j, counter);
#if defined(__CUDA_ARCH__)
#pragma unroll
#endif
        for (int round = 0; round < 10; ++round) c = philox_round(c, k0[round], k1[round]);
        return c;
    }
};

}  // namespace scorekit
