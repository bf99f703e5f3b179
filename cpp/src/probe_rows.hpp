// Probe rows drawn from the counter-based stream: row r of a stream viewed as
// rows of D elements is elements [r * D, (r + 1) * D).
#pragma once

#include <cstdint>

#include "simd.hpp"
#include "scorekit/noise.hpp"
#include "scorekit/trace.hpp"

namespace scorekit {
namespace cpu {

// Elements [j0, j0 + n) of stream row r, before any sphere scaling.
template <class T>
void probe_segment(ProbeKind kind, const Stream& st, std::uint64_t r, std::int64_t D,
                   std::int64_t j0, std::int64_t n, T* v) {
    const std::uint64_t first =
        r * static_cast<std::uint64_t>(D) + static_cast<std::uint64_t>(j0);
    if (kind == ProbeKind::Rademacher)
        fill_tile<RademacherBlock<T>>(st, first, static_cast<std::uint64_t>(n), v);
    else
        fill_tile<NormalBlock<T>>(st, first, static_cast<std::uint64_t>(n), v);
}

// A sphere probe's row, rescaled in place to norm sqrt(D).
template <class T>
void sphere_normalise(T* v, std::int64_t D) {
    scale_row(v, D, sphere_factor(chunked_dot(v, v, D), D));
}

// The whole probe of stream row r into v[0 .. D).
template <class T>
void probe_row(ProbeKind kind, const Stream& st, std::uint64_t r, std::int64_t D, T* v) {
    probe_segment(kind, st, r, D, 0, D, v);
    if (kind == ProbeKind::Sphere) sphere_normalise(v, D);
}

}  // namespace cpu
}  // namespace scorekit
