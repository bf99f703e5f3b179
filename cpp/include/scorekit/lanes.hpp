// The operations the deterministic math needs beyond + - * / and comparisons,
// for one value (float, double) here; the CPU backend adds the same traits for
// vectors of lanes, so one source serves the scalar functors, every SIMD width
// and the GPU.
//
//   Lanes<R>::E            element type (float or double)
//   Lanes<R>::U            unsigned integer lanes of the same width as E
//   Lanes<R>::M            what a comparison of two R gives (bool for one value)
//   splat(E)               every lane equal to one value
//   bits(R), from_bits(U)  reinterpretation
//   select(M, a, b)        lane-wise c ? a : b, without branches
//   flip_sign(M, x)        x with its sign flipped where c holds (exact)
//   sqrt(R)                correctly rounded square root
//   to_real(U)             conversion of integers below 2^24 (exact)
#pragma once

#include "config.hpp"

namespace scorekit {

template <class R>
struct Lanes;

// One value of type E_ with its bits in U_.
template <class E_, class U_>
struct ScalarLanes {
    using E = E_;
    using U = U_;
    using M = bool;
    SCOREKIT_HD SCOREKIT_INLINE static E splat(E v) { return v; }
    SCOREKIT_HD SCOREKIT_INLINE static U bits(E x) { return bits_of(x); }
    SCOREKIT_HD SCOREKIT_INLINE static E from_bits(U u) {
        if constexpr (sizeof(E) == 4)
            return float_of(u);
        else
            return double_of(u);
    }
    SCOREKIT_HD SCOREKIT_INLINE static E select(M c, E a, E b) { return scorekit::select(c, a, b); }
    SCOREKIT_HD SCOREKIT_INLINE static E flip_sign(M c, E x) { return scorekit::flip_sign(c, x); }
    SCOREKIT_HD SCOREKIT_INLINE static E sqrt(E x) { return sqrt_of(x); }
    SCOREKIT_HD SCOREKIT_INLINE static E to_real(U u) { return static_cast<E>(u); }
};

template <>
struct Lanes<float> : ScalarLanes<float, std::uint32_t> {};
template <>
struct Lanes<double> : ScalarLanes<double, std::uint64_t> {};

template <class R>
using elem_t = typename Lanes<R>::E;
template <class R>
using ulanes_t = typename Lanes<R>::U;

}  // namespace scorekit
