// Fused denoising score matching: noise regeneration, residual, gradient and
// the per-sample reduction in one pass over score.
#include <algorithm>
#include <vector>

#include "cpu_backend.hpp"
#include "parallel.hpp"
#include "simd.hpp"
#include "scorekit/noise.hpp"

namespace scorekit {
namespace cpu {

namespace {

template <class T>
struct DsmArgs {
    const T* score;
    const T* noise;
    std::int64_t D;
    DsmRows<T> row;  // row(b): sample b's DsmRow
    Stream st;
    std::uint64_t stream_first;  // stream element of element 0
    T* grad;

    // z for elements [first, first + count): the stored noise or `tile`, filled.
    const T* noise_at(std::int64_t first, std::int64_t count, T* tile) const {
        if (noise) return noise + first;
        fill_tile<NormalBlock<T>>(st, stream_first + static_cast<std::uint64_t>(first),
                                   static_cast<std::uint64_t>(count), tile);
        return tile;
    }
    // Sum of squared residuals of elements [first, first + count) of row b.
    double run(const DsmRow<T>& r, std::int64_t first, std::int64_t count, const T* z) const {
        return r.run(score + first, z, grad ? grad + first : nullptr, count);
    }
};

// Rows of at most kReduceChunk elements: whole rows per task.
template <class T>
void short_rows(const DsmArgs<T>& a, std::int64_t B, double* row_loss) {
    for_each_row_group(B, a.D, [&](std::int64_t b0, std::int64_t b1, std::int64_t first,
                                   std::int64_t count) {
        alignas(64) T tile[kTile];
        const T* z = a.noise_at(first, count, tile);
        for (std::int64_t b = b0; b < b1; ++b) {
            const DsmRow<T> r = a.row(b);
            const std::int64_t off = (b - b0) * a.D;
            row_loss[b] = 0.5 * r.loss_scale * a.run(r, first + off, a.D, z + off);
        }
    });
}

// Longer rows: chunks of kReduceChunk elements as tasks, chunk sums added in order.
template <class T>
void long_rows(const DsmArgs<T>& a, std::int64_t B, double* row_loss) {
    const std::int64_t chunks = (a.D + kReduceChunk - 1) / kReduceChunk;
    std::vector<double> partial(static_cast<std::size_t>(B * chunks));
    for_each_tile(B * chunks, 1, [&](std::int64_t task, std::int64_t) {
        const std::int64_t b = task / chunks, c = task % chunks;
        const std::int64_t first = b * a.D + c * kReduceChunk;
        const std::int64_t count = std::min(kReduceChunk, a.D - c * kReduceChunk);
        alignas(64) T tile[kReduceChunk];
        partial[static_cast<std::size_t>(task)] =
            a.run(a.row(b), first, count, a.noise_at(first, count, tile));
    }, B * a.D);
    for (std::int64_t b = 0; b < B; ++b) {
        double s = 0.0;
        for (std::int64_t c = 0; c < chunks; ++c) s += partial[static_cast<std::size_t>(b * chunks + c)];
        row_loss[b] = 0.5 * a.row(b).loss_scale * s;
    }
}

}  // namespace

template <class T>
void dsm_loss(const T* score, const T* noise, std::int64_t B, std::int64_t D, RowParam<T> sigma,
              bool weight_is_sigma2, RowParam<T> weight, double batch_scale, Stream st,
              std::uint64_t first_sample, double* row_loss, T* grad) {
    static_assert(kReduceChunk <= kTile, "a chunk's noise must fit one tile");
    const DsmArgs<T> a{score, noise, D, DsmRows<T>{sigma, weight_is_sigma2, weight, batch_scale},
                       st, first_sample * static_cast<std::uint64_t>(D), grad};
    if (D <= kReduceChunk)
        short_rows(a, B, row_loss);
    else
        long_rows(a, B, row_loss);
}

double sum(const double* v, std::int64_t n) { return lane_sum(v, n); }

template void dsm_loss<float>(const float*, const float*, std::int64_t, std::int64_t,
                              RowParam<float>, bool, RowParam<float>, double, Stream,
                              std::uint64_t, double*, float*);
template void dsm_loss<double>(const double*, const double*, std::int64_t, std::int64_t,
                               RowParam<double>, bool, RowParam<double>, double, Stream,
                               std::uint64_t, double*, double*);

}  // namespace cpu
}  // namespace scorekit
