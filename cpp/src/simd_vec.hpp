// Noise fills on vectors of N 32-bit lanes (GCC / Clang vector extensions).
//
// Included by one translation unit per instruction set (simd_avx2.cpp,
// simd_avx512.cpp), each compiled with its own target flags and inside a
// namespace of its own (see simd_avx2.hpp). The math is the shared template
// code of noise.hpp and detmath.hpp, instantiated on vectors: a lane computes
// what the scalar functor computes, with the same operations in the same order.
//
// An Isa supplies N (lanes of 32 bits per Philox vector) and
//   mulhilo(a, m, hi, lo): the high and low halves of a * m for every lane.
#pragma once

#include <cstdint>
#include <cstring>
#include <type_traits>
#include <utility>

#include "scorekit/noise.hpp"

namespace scorekit {
namespace vec {

template <class E, int N>
struct VecOf {
    typedef E type __attribute__((vector_size(sizeof(E) * N)));
};
template <class E, int N>
using Vec = typename VecOf<E, N>::type;

// Lanes traits for vectors of real numbers with lanes of unsigned U.
template <class R, class E_, class U_>
struct VecLanes {
    using E = E_;
    using U = U_;
    using M = decltype(R{} < R{});
    static constexpr int N = static_cast<int>(sizeof(R) / sizeof(E));
    SCOREKIT_INLINE static R splat(E v) { return R{} + v; }
    SCOREKIT_INLINE static U bits(R x) { return reinterpret_cast<U>(x); }
    SCOREKIT_INLINE static R from_bits(U u) { return reinterpret_cast<R>(u); }
    SCOREKIT_INLINE static R select(M c, R a, R b) { return c ? a : b; }
    SCOREKIT_INLINE static R flip_sign(M c, R x) {
        return from_bits(bits(x) ^ (reinterpret_cast<U>(c) & (U{} + (E_sign()))));
    }
    SCOREKIT_INLINE static R sqrt(R x) {
        R r;
        for (int i = 0; i < N; ++i) r[i] = sqrt_of(static_cast<E>(x[i]));
        return r;
    }
    // integers below 2^24, converted through signed lanes (one instruction)
    SCOREKIT_INLINE static R to_real(U u) { return __builtin_convertvector(reinterpret_cast<M>(u), R); }

  private:
    static constexpr typename Lanes<E>::U E_sign() {
        return static_cast<typename Lanes<E>::U>(1) << (8 * sizeof(E) - 1);
    }
};

}  // namespace vec

#define SCOREKIT_VEC_LANES(E, UE, N)                                                        \
    template <>                                                                             \
    struct Lanes<vec::Vec<E, N>> : vec::VecLanes<vec::Vec<E, N>, E, vec::Vec<UE, N>> {};
SCOREKIT_VEC_LANES(float, std::uint32_t, 4)
SCOREKIT_VEC_LANES(float, std::uint32_t, 8)
SCOREKIT_VEC_LANES(float, std::uint32_t, 16)
SCOREKIT_VEC_LANES(double, std::uint64_t, 2)
SCOREKIT_VEC_LANES(double, std::uint64_t, 4)
SCOREKIT_VEC_LANES(double, std::uint64_t, 8)
#undef SCOREKIT_VEC_LANES

namespace vec {

// Two vectors as one value: every operation is applied to both, in adjacent
// instructions, which gives the processor two independent dependency chains
// through the long polynomial evaluations of the transforms.
template <class V>
struct Pair {
    V a, b;
};

template <class S>
using if_scalar = std::enable_if_t<std::is_arithmetic<S>::value, int>;

#define SCOREKIT_PAIR_OP(op)                                                             \
    template <class V>                                                                   \
    SCOREKIT_INLINE auto operator op(Pair<V> x, Pair<V> y) {                             \
        return Pair<decltype(x.a op y.a)>{x.a op y.a, x.b op y.b};                        \
    }                                                                                    \
    template <class V, class S, if_scalar<S> = 0>                                        \
    SCOREKIT_INLINE auto operator op(Pair<V> x, S y) {                                   \
        return Pair<decltype(x.a op y)>{x.a op y, x.b op y};                              \
    }                                                                                    \
    template <class V, class S, if_scalar<S> = 0>                                        \
    SCOREKIT_INLINE auto operator op(S x, Pair<V> y) {                                   \
        return Pair<decltype(x op y.a)>{x op y.a, x op y.b};                              \
    }
SCOREKIT_PAIR_OP(+)
SCOREKIT_PAIR_OP(-)
SCOREKIT_PAIR_OP(*)
SCOREKIT_PAIR_OP(/)
SCOREKIT_PAIR_OP(&)
SCOREKIT_PAIR_OP(|)
SCOREKIT_PAIR_OP(^)
SCOREKIT_PAIR_OP(<<)
SCOREKIT_PAIR_OP(>>)
SCOREKIT_PAIR_OP(<)
SCOREKIT_PAIR_OP(>)
SCOREKIT_PAIR_OP(>=)
SCOREKIT_PAIR_OP(==)
SCOREKIT_PAIR_OP(!=)
#undef SCOREKIT_PAIR_OP

}  // namespace vec

template <class V>
struct Lanes<vec::Pair<V>> {
    using L = Lanes<V>;
    using P = vec::Pair<V>;
    using E = typename L::E;
    using U = vec::Pair<typename L::U>;
    using M = vec::Pair<typename L::M>;
    SCOREKIT_INLINE static P splat(E v) { return {L::splat(v), L::splat(v)}; }
    SCOREKIT_INLINE static U bits(P x) { return {L::bits(x.a), L::bits(x.b)}; }
    SCOREKIT_INLINE static P from_bits(U u) { return {L::from_bits(u.a), L::from_bits(u.b)}; }
    SCOREKIT_INLINE static P select(M c, P x, P y) {
        return {L::select(c.a, x.a, y.a), L::select(c.b, x.b, y.b)};
    }
    SCOREKIT_INLINE static P flip_sign(M c, P x) {
        return {L::flip_sign(c.a, x.a), L::flip_sign(c.b, x.b)};
    }
    SCOREKIT_INLINE static P sqrt(P x) { return {L::sqrt(x.a), L::sqrt(x.b)}; }
    SCOREKIT_INLINE static P to_real(U u) { return {L::to_real(u.a), L::to_real(u.b)}; }
};

namespace vec {

// ------------------------------------------------------------- shuffles ---

// Lane t of zip<S, Hi>(x, y): units of S lanes taken alternately from x and y,
// from their low halves (Hi false) or high halves.
constexpr int zip_index(int n, int unit, bool hi, int t) {
    const int i = t / unit, r = t % unit, base = hi ? n / (2 * unit) : 0;
    return (i % 2) * n + (base + i / 2) * unit + r;
}

template <int S, bool Hi, class V, std::size_t... T>
SCOREKIT_INLINE V zip(V x, V y, std::index_sequence<T...>) {
    constexpr int n = static_cast<int>(sizeof...(T));
    return __builtin_shufflevector(x, y, zip_index(n, S, Hi, static_cast<int>(T))...);
}

template <class V>
constexpr int lanes_of() {
    return static_cast<int>(sizeof(V) / sizeof(V{}[0]));
}

template <class V, class E>
SCOREKIT_INLINE void store(E* out, V v) {
    std::memcpy(out, &v, sizeof v);
}

// out[2 l + k] = v_k[l]
template <class V, class E>
SCOREKIT_INLINE void store_interleaved2(E* out, V a, V b) {
    using I = std::make_index_sequence<lanes_of<V>()>;
    store(out, zip<1, false>(a, b, I{}));
    store(out + lanes_of<V>(), zip<1, true>(a, b, I{}));
}

// out[4 l + k] = v_k[l]
template <class V, class E>
SCOREKIT_INLINE void store_interleaved4(E* out, V a, V b, V c, V d) {
    constexpr int n = lanes_of<V>();
    using I = std::make_index_sequence<n>;
    const V ab_lo = zip<1, false>(a, b, I{}), ab_hi = zip<1, true>(a, b, I{});
    const V cd_lo = zip<1, false>(c, d, I{}), cd_hi = zip<1, true>(c, d, I{});
    if constexpr (n == 2) {  // the pairs are whole vectors already
        store(out, ab_lo);
        store(out + 2, cd_lo);
        store(out + 4, ab_hi);
        store(out + 6, cd_hi);
    } else {
        store(out, zip<2, false>(ab_lo, cd_lo, I{}));
        store(out + n, zip<2, true>(ab_lo, cd_lo, I{}));
        store(out + 2 * n, zip<2, false>(ab_hi, cd_hi, I{}));
        store(out + 3 * n, zip<2, true>(ab_hi, cd_hi, I{}));
    }
}

// ------------------------------------------------------------- Philox ---

// Philox4x32-10 on G groups of N consecutive blocks at once: w[g][k] lane l is
// word k of block j0 + g N + l. The groups are independent chains, which hides
// the latency of the multiplies.
template <class Isa, int G>
SCOREKIT_INLINE void philox(const Stream& st, std::uint64_t j0, Vec<std::uint32_t, Isa::N> (&w)[G][4]) {
    using U = Vec<std::uint32_t, Isa::N>;
    U iota;
    for (int l = 0; l < Isa::N; ++l) iota[l] = static_cast<std::uint32_t>(l);
    for (int g = 0; g < G; ++g) {
        const std::uint64_t j = j0 + static_cast<std::uint64_t>(g) * Isa::N;
        const std::uint32_t lo = static_cast<std::uint32_t>(j);
        const U c0 = iota + lo;
        // a lane whose low word wrapped carries into the high word
        const U carry = reinterpret_cast<U>(c0 < lo);  // all ones where it wrapped
        w[g][0] = c0;
        w[g][1] = (U{} + static_cast<std::uint32_t>(j >> 32)) - carry;
        w[g][2] = U{} + static_cast<std::uint32_t>(st.counter);
        w[g][3] = U{} + static_cast<std::uint32_t>(st.counter >> 32);
    }
    std::uint32_t k0 = static_cast<std::uint32_t>(st.seed);
    std::uint32_t k1 = static_cast<std::uint32_t>(st.seed >> 32);
#pragma GCC unroll 10
    for (int round = 0; round < 10; ++round) {
        for (int g = 0; g < G; ++g) {
            U hi0, lo0, hi1, lo1;
            Isa::mulhilo(w[g][0], philox_detail::kMul0, hi0, lo0);
            Isa::mulhilo(w[g][2], philox_detail::kMul1, hi1, lo1);
            w[g][0] = hi1 ^ w[g][1] ^ k0;
            w[g][1] = lo1;
            w[g][2] = hi0 ^ w[g][3] ^ k1;
            w[g][3] = lo0;
        }
        k0 += philox_detail::kWeyl0;
        k1 += philox_detail::kWeyl1;
    }
}

// mulhilo for any N on any target, through 64-bit lanes (the instruction-set
// files use their own multiplies; this one lets every width be tested anywhere).
template <int Width>
struct PortableIsa {
    static constexpr int N = Width;
    using U = Vec<std::uint32_t, N>;
    SCOREKIT_INLINE static void mulhilo(U a, std::uint32_t m, U& hi, U& lo) {
        const Vec<std::uint64_t, N> p = __builtin_convertvector(a, Vec<std::uint64_t, N>) *
                                        static_cast<std::uint64_t>(m);
        hi = __builtin_convertvector(p >> 32, U);
        lo = __builtin_convertvector(p, U);
    }
};

// ---------------------------------------------- transforms of N blocks ---

// VecBlock<Block, N>::store(w, out) writes the values of the N blocks whose
// words are w[0..4) (lane l: block l), in element order.
template <class Block, int N>
struct VecBlock;

// The normal transforms take two groups of N blocks at once, as Pairs.
template <int N>
struct VecBlock<NormalBlock<float>, N> {
    using U = Vec<std::uint32_t, N>;
    using P = Pair<Vec<float, N>>;
    using PU = Pair<U>;
    SCOREKIT_INLINE static void store2(const U (&w0)[4], const U (&w1)[4], float* out) {
        P c0, s0, c1, s1;
        box_muller_f32<P>(PU{w0[0], w1[0]}, PU{w0[1], w1[1]}, c0, s0);
        box_muller_f32<P>(PU{w0[2], w1[2]}, PU{w0[3], w1[3]}, c1, s1);
        store_interleaved4(out, c0.a, s0.a, c1.a, s1.a);
        store_interleaved4(out + 4 * N, c0.b, s0.b, c1.b, s1.b);
    }
};

// Lanes [H * N/2, (H + 1) * N/2) of w as 64-bit lanes: the doubles work on
// vectors of native width.
template <int H, int N, std::size_t... T>
SCOREKIT_INLINE Vec<std::uint64_t, N / 2> half64(Vec<std::uint32_t, N> w, std::index_sequence<T...>) {
    using Half = Vec<std::uint32_t, N / 2>;
    const Half h = __builtin_shufflevector(w, w, (H * N / 2 + static_cast<int>(T))...);
    return __builtin_convertvector(h, Vec<std::uint64_t, N / 2>);
}
template <int H, int N>
SCOREKIT_INLINE Vec<std::uint64_t, N / 2> half64(Vec<std::uint32_t, N> w) {
    return half64<H, N>(w, std::make_index_sequence<N / 2>{});
}

template <int N>
struct VecBlock<NormalBlock<double>, N> {
    using U = Vec<std::uint32_t, N>;
    using P = Pair<Vec<double, N / 2>>;
    using PU = Pair<Vec<std::uint64_t, N / 2>>;
    template <int H>
    SCOREKIT_INLINE static void half(const U (&w0)[4], const U (&w1)[4], double* out) {
        const P ur = uniform_f64<P>(PU{half64<H, N>(w0[0]), half64<H, N>(w1[0])},
                                    PU{half64<H, N>(w0[1]), half64<H, N>(w1[1])});
        const P ua = uniform_f64<P>(PU{half64<H, N>(w0[2]), half64<H, N>(w1[2])},
                                    PU{half64<H, N>(w0[3]), half64<H, N>(w1[3])});
        P zc, zs;
        box_muller(ur, ua, zc, zs);
        store_interleaved2(out + H * N, zc.a, zs.a);
        store_interleaved2(out + 2 * N + H * N, zc.b, zs.b);
    }
    SCOREKIT_INLINE static void store2(const U (&w0)[4], const U (&w1)[4], double* out) {
        half<0>(w0, w1, out);
        half<1>(w0, w1, out);
    }
};

template <int N>
struct VecBlock<UniformBlock<float>, N> {
    using U = Vec<std::uint32_t, N>;
    using R = Vec<float, N>;
    SCOREKIT_INLINE static void store(const U (&w)[4], float* out) {
        store_interleaved4(out, uniform_f32<R>(w[0]), uniform_f32<R>(w[1]), uniform_f32<R>(w[2]),
                           uniform_f32<R>(w[3]));
    }
};

template <int N>
struct VecBlock<UniformBlock<double>, N> {
    using U = Vec<std::uint32_t, N>;
    using R = Vec<double, N / 2>;
    template <int H>
    SCOREKIT_INLINE static void half(const U (&w)[4], double* out) {
        store_interleaved2(out + H * N, uniform_f64<R>(half64<H, N>(w[0]), half64<H, N>(w[1])),
                           uniform_f64<R>(half64<H, N>(w[2]), half64<H, N>(w[3])));
    }
    SCOREKIT_INLINE static void store(const U (&w)[4], double* out) {
        half<0>(w, out);
        half<1>(w, out);
    }
};

template <int N>
struct VecBlock<RademacherBlock<float>, N> {
    using U = Vec<std::uint32_t, N>;
    using R = Vec<float, N>;
    SCOREKIT_INLINE static void store(const U (&w)[4], float* out) {
        store_interleaved4(out, rademacher_of<R>(w[0]), rademacher_of<R>(w[1]),
                           rademacher_of<R>(w[2]), rademacher_of<R>(w[3]));
    }
};

template <int N>
struct VecBlock<RademacherBlock<double>, N> {
    using U = Vec<std::uint32_t, N>;
    using R = Vec<double, N / 2>;
    template <int H>
    SCOREKIT_INLINE static void half(const U (&w)[4], double* out) {
        store_interleaved4(out + H * 2 * N, rademacher_of<R>(half64<H, N>(w[0])),
                           rademacher_of<R>(half64<H, N>(w[1])), rademacher_of<R>(half64<H, N>(w[2])),
                           rademacher_of<R>(half64<H, N>(w[3])));
    }
    SCOREKIT_INLINE static void store(const U (&w)[4], double* out) {
        half<0>(w, out);
        half<1>(w, out);
    }
};

// Values of two groups of N blocks: VecBlock's store2 where it has one, else
// its store on each group.
template <class B, class = void>
struct HasStore2 : std::false_type {};
template <class B>
struct HasStore2<B, decltype(void(&B::store2))> : std::true_type {};

template <class Block, int N, class T>
SCOREKIT_INLINE void store2(const Vec<std::uint32_t, N> (&w0)[4],
                            const Vec<std::uint32_t, N> (&w1)[4], T* out) {
    using VB = VecBlock<Block, N>;
    if constexpr (HasStore2<VB>::value) {
        VB::store2(w0, w1, out);
    } else {
        VB::store(w0, out);
        VB::store(w1, out + N * Block::kPerBlock);
    }
}

// The Bulk policy of fill_range: G groups (an even number) of N blocks per
// step; the last blocks (fewer than G N) from one more step into a buffer, or
// one by one when they are fewer than N / 2.
template <class Isa, int G>
struct Bulk {
    static_assert(G % 2 == 0, "groups are transformed in pairs");
    static constexpr std::int64_t kStep = static_cast<std::int64_t>(G) * Isa::N;  // blocks

    // Values of blocks [j, j + kStep) into out.
    template <class Block, class T>
    SCOREKIT_INLINE static void step(const Stream& st, std::uint64_t j, T* out) {
        Vec<std::uint32_t, Isa::N> w[G][4];
        philox<Isa, G>(st, j, w);
        for (int g = 0; g < G; g += 2)
            store2<Block, Isa::N>(w[g], w[g + 1], out + g * Isa::N * Block::kPerBlock);
    }

    template <class Block, class T>
    SCOREKIT_INLINE static void run(const Stream& st, std::uint64_t j0, std::int64_t nb, T* out) {
        std::int64_t b = 0;
        for (; b + kStep <= nb; b += kStep)
            step<Block>(st, j0 + static_cast<std::uint64_t>(b), out + b * Block::kPerBlock);
        if ((nb - b) * 2 < Isa::N) {  // a few blocks: cheaper one by one than as a whole step
            ScalarBulk::run<Block, T>(st, j0 + static_cast<std::uint64_t>(b), nb - b,
                                      out + b * Block::kPerBlock);
        } else if (b < nb) {  // one more step into a buffer, the needed part copied
            alignas(64) T tmp[kStep * Block::kPerBlock];
            step<Block>(st, j0 + static_cast<std::uint64_t>(b), tmp);
            std::memcpy(out + b * Block::kPerBlock, tmp,
                        static_cast<std::size_t>((nb - b) * Block::kPerBlock) * sizeof(T));
        }
    }
};

// kind: 0 normal, 1 uniform, 2 rademacher
template <class Isa, int G, class T>
void fill(int kind, std::uint64_t seed, std::uint64_t counter, std::uint64_t start, std::uint64_t n,
          T* out) {
    const Stream st{seed, counter};
    switch (kind) {
        case 0: fill_range<NormalBlock<T>, T, Bulk<Isa, G>>(st, start, n, out); break;
        case 1: fill_range<UniformBlock<T>, T, Bulk<Isa, G>>(st, start, n, out); break;
        default: fill_range<RademacherBlock<T>, T, Bulk<Isa, G>>(st, start, n, out); break;
    }
}

}  // namespace vec
}  // namespace scorekit
