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

template <>
struct Lanes<float> {
    using E = float;
    using U = std::uint32_t;
    using M = bool;
    SCOREKIT_HD SCOREKIT_INLINE static float splat(float v) { return v; }
    SCOREKIT_HD SCOREKIT_INLINE static U bits(float x) { return bits_of(x); }
    SCOREKIT_HD SCOREKIT_INLINE static float from_bits(U u) { return float_of(u); }
    SCOREKIT_HD SCOREKIT_INLINE static float select(M c, float a, float b) {
        return scorekit::select(c, a, b);
    }
    SCOREKIT_HD SCOREKIT_INLINE static float flip_sign(M c, float x) {
        return scorekit::flip_sign(c, x);
    }
    SCOREKIT_HD SCOREKIT_INLINE static float sqrt(float x) { return sqrt_of(x); }
    SCOREKIT_HD SCOREKIT_INLINE static float to_real(U u) { return static_cast<float>(u); }
};

template <>
struct Lanes<double> {
    using E = double;
    using U = std::uint64_t;
    using M = bool;
    SCOREKIT_HD SCOREKIT_INLINE static double splat(double v) { return v; }
    SCOREKIT_HD SCOREKIT_INLINE static U bits(double x) { return bits_of(x); }
    SCOREKIT_HD SCOREKIT_INLINE static double from_bits(U u) { return double_of(u); }
    SCOREKIT_HD SCOREKIT_INLINE static double select(M c, double a, double b) {
        return scorekit::select(c, a, b);
    }
    SCOREKIT_HD SCOREKIT_INLINE static double flip_sign(M c, double x) {
        return scorekit::flip_sign(c, x);
    }
    SCOREKIT_HD SCOREKIT_INLINE static double sqrt(double x) { return sqrt_of(x); }
    SCOREKIT_HD SCOREKIT_INLINE static double to_real(U u) { return static_cast<double>(u); }
};

template <class R>
using elem_t = typename Lanes<R>::E;
template <class R>
using ulanes_t = typename Lanes<R>::U;

}  // namespace scorekit
