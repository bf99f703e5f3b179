// perturb and langevin_step: one pass, noise generated per tile in L1.
#include <algorithm>

#include "cpu_backend.hpp"
#include "parallel.hpp"
#include "simd.hpp"
#include "scorekit/noise.hpp"

namespace scorekit {
namespace cpu {

namespace {
// Calls seg(b, first, count, z) for each piece of row b inside a tile, with
// z[0 .. count) the normals of elements [first, first + count).
template <class T, class Seg>
void noisy_row_segments(Stream st, std::int64_t B, std::int64_t D, Seg&& seg) {
    const std::int64_t n = B * D;
    for_each_tile(n, kTile, [&](std::int64_t first, std::int64_t count) {
        alignas(64) T z[kTile];
        fill_tile<NormalBlock<T>>(st, static_cast<std::uint64_t>(first),
                                   static_cast<std::uint64_t>(count), z);
        const std::int64_t end = first + count;
        std::int64_t b = first / D;
        for (std::int64_t i = first; i < end; ++b) {
            const std::int64_t stop = std::min(end, (b + 1) * D);
            seg(b, i, stop - i, z + (i - first));
            i = stop;
        }
    });
}
}  // namespace

template <class T>
void perturb(const T* x, std::int64_t B, std::int64_t D, RowParam<T> scale, RowParam<T> sigma,
             Stream st, T* out) {
    noisy_row_segments<T>(st, B, D, [&](std::int64_t b, std::int64_t i, std::int64_t n,
                                        const T* z) {
        const T a = scale(b), s = sigma(b);
        const T* xi = x + i;
        T* oi = out + i;
        for (std::int64_t k = 0; k < n; ++k) oi[k] = perturb_value(xi[k], z[k], a, s);
    });
}

template <class T>
void langevin_step(const T* x, const T* score, std::int64_t B, std::int64_t D,
                   RowParam<T> step_size, Stream st, T* out) {
    noisy_row_segments<T>(st, B, D, [&](std::int64_t b, std::int64_t i, std::int64_t n,
                                        const T* z) {
        const LangevinRow<T> row(step_size(b));
        const T* xi = x + i;
        const T* si = score + i;
        T* oi = out + i;
        for (std::int64_t k = 0; k < n; ++k) oi[k] = row.apply(xi[k], si[k], z[k]);
    });
}

template void perturb<float>(const float*, std::int64_t, std::int64_t, RowParam<float>,
                             RowParam<float>, Stream, float*);
template void perturb<double>(const double*, std::int64_t, std::int64_t, RowParam<double>,
                              RowParam<double>, Stream, double*);
template void langevin_step<float>(const float*, const float*, std::int64_t, std::int64_t,
                                   RowParam<float>, Stream, float*);
template void langevin_step<double>(const double*, const double*, std::int64_t, std::int64_t,
                                    RowParam<double>, Stream, double*);

}  // namespace cpu
}  // namespace scorekit
