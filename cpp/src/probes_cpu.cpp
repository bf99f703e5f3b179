// Probe arrays and the per-sample statistics of trace and diagonal estimation.
#include <algorithm>

#include "cpu_backend.hpp"
#include "parallel.hpp"
#include "probe_rows.hpp"

namespace scorekit {
namespace cpu {

template <class T>
void fill_probes(ProbeKind kind, Stream st, std::int64_t B, std::int64_t m, std::int64_t D,
                 std::int64_t K, std::int64_t k0, T* out) {
    const std::int64_t rows = B * m;
    if (rows == 0 || D == 0) return;
    // Rows (b, i) -> stream rows b * K + k0 + i, filled tile by tile.
    for_each_tile(rows * D, kTile, [&](std::int64_t first, std::int64_t count) {
        const std::int64_t end = first + count;
        for (std::int64_t e = first; e < end;) {
            const std::int64_t row = e / D, j0 = e - row * D;
            const std::int64_t n = std::min(end - e, D - j0);
            const std::int64_t b = row / m, i = row - b * m;
            const auto r = static_cast<std::uint64_t>(b * K + k0 + i);
            probe_segment(kind, st, r, D, j0, n, out + e);
            e += n;
        }
    });
    if (kind == ProbeKind::Sphere)
        for_each_tile(rows, 1, [&](std::int64_t row, std::int64_t) {
            sphere_normalise(out + row * D, D);
        }, rows * D);
}

template <class T>
void trace_moments(const T* V, const T* AV, std::int64_t B, std::int64_t m, std::int64_t D,
                   const std::uint8_t* active, double* t, RunningMoments* moments,
                   std::int64_t first, std::int64_t* first_bad) {
    for_each_tile(B, 1, [&](std::int64_t b, std::int64_t) {
        for (std::int64_t i = 0; i < m; ++i) {
            const std::int64_t row = b * m + i;
            t[row] = chunked_dot(V + row * D, AV + row * D, D);
        }
        if (active && !active[b]) return;
        add_round(moments[b], t + b * m, m, first, first_bad ? first_bad + b : nullptr);
    }, B * m * D);
}

template <class T>
void diagonal_moments(const T* V, const T* AV, std::int64_t B, std::int64_t m, std::int64_t D,
                      double count, double* mean, double* m2) {
    for_each_tile(B * D, kTile, [&](std::int64_t first, std::int64_t n) {
        for (std::int64_t e = first; e < first + n; ++e)
            diagonal_element(V, AV, m, D, e, count, mean, m2);
    }, B * m * D);
}

#define SCOREKIT_INSTANTIATE(T)                                                                 \
    template void fill_probes<T>(ProbeKind, Stream, std::int64_t, std::int64_t, std::int64_t,   \
                                 std::int64_t, std::int64_t, T*);                               \
    template void trace_moments<T>(const T*, const T*, std::int64_t, std::int64_t, std::int64_t, \
                                   const std::uint8_t*, double*, RunningMoments*, std::int64_t, \
                                   std::int64_t*);                                              \
    template void diagonal_moments<T>(const T*, const T*, std::int64_t, std::int64_t,            \
                                      std::int64_t, double, double*, double*);
SCOREKIT_INSTANTIATE(float)
SCOREKIT_INSTANTIATE(double)
#undef SCOREKIT_INSTANTIATE

}  // namespace cpu
}  // namespace scorekit
