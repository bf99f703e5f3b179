// Sampler steps: the affine noisy update, the Langevin corrector with its
// signal-to-noise step size, and the MALA accept / reject.
#include <algorithm>
#include <vector>

#include "cpu_backend.hpp"
#include "noisy_rows.hpp"

namespace scorekit {
namespace cpu {

namespace {
// Stream element of position j of sample b: (first_sample + b) * D + j.
inline std::uint64_t stream_first(std::uint64_t first_sample, std::int64_t D) {
    return first_sample * static_cast<std::uint64_t>(D);
}
}  // namespace

template <class T>
void affine_step(const T* x, const T* score, std::int64_t B, std::int64_t D, RowParam<T> a,
                 RowParam<T> c, RowParam<T> g, Stream st, std::uint64_t first_sample, T* out,
                 T* out_mean) {
    noisy_row_segments<T>(st, stream_first(first_sample, D), B, D,
                          [&](std::int64_t b, std::int64_t i, std::int64_t n, const T* z) {
        const AffineStep<T> step{a(b), c(b), g(b)};
        for (std::int64_t k = 0; k < n; ++k) {
            const T m = step.mean(x[i + k], score[i + k]);
            if (out_mean) out_mean[i + k] = m;
            out[i + k] = step.next(m, z[k]);
        }
    });
}

template <class T>
void langevin_corrector(const T* x, const T* score, std::int64_t B, std::int64_t D, double snr,
                        RowParam<T> alpha, bool per_sample, Stream st, std::uint64_t first_sample,
                        T* out, T* out_mean, double* step) {
    // Pass 1: |z_b| (noise regenerated chunk by chunk, in the order of chunked_dot) and |s_b|.
    std::vector<double> znorm(static_cast<std::size_t>(B)), snorm(static_cast<std::size_t>(B));
    const std::uint64_t first = stream_first(first_sample, D);
    for_each_tile(B, 1, [&](std::int64_t b, std::int64_t) {
        alignas(64) T tile[kReduceChunk];
        double zz = 0.0;
        for_chunks(D, [&](std::int64_t c0, std::int64_t m) {
            fill_tile<NormalBlock<T>>(st, first + static_cast<std::uint64_t>(b * D + c0),
                                       static_cast<std::uint64_t>(m), tile);
            zz += chunked_dot(tile, tile, m);
        });
        znorm[static_cast<std::size_t>(b)] = sqrt_of(zz);
        snorm[static_cast<std::size_t>(b)] = sqrt_of(chunked_dot(score + b * D, score + b * D, D));
    }, B * D);
    const double zmean = B ? lane_sum(znorm.data(), B) / static_cast<double>(B) : 0.0;
    const double smean = B ? lane_sum(snorm.data(), B) / static_cast<double>(B) : 0.0;
    // Pass 2: x_mean = x + eps s, x = x_mean + sqrt(2 eps) z.
    std::vector<T> c(static_cast<std::size_t>(B)), g(static_cast<std::size_t>(B));
    for (std::int64_t b = 0; b < B; ++b) {
        const auto i = static_cast<std::size_t>(b);
        const double eps = per_sample ? snr_step_size(snr, alpha(b), znorm[i], snorm[i])
                                      : snr_step_size(snr, alpha(b), zmean, smean);
        step[b] = eps;
        c[i] = static_cast<T>(eps);
        g[i] = static_cast<T>(sqrt_of(2.0 * eps));
    }
    affine_step<T>(x, score, B, D, RowParam<T>{nullptr, T(1)}, RowParam<T>{c.data(), T(0)},
                   RowParam<T>{g.data(), T(0)}, st, first_sample, out, out_mean);
}

template <class T>
void mala_accept(const T* x, const T* score_x, const double* logp_x, const T* x_prop,
                 const T* score_prop, const double* logp_prop, std::int64_t B, std::int64_t D,
                 RowParam<T> h, Stream st, std::uint64_t first_sample, T* x_out, T* score_out,
                 double* logp_out, std::uint8_t* accepted) {
    for_each_tile(B, 1, [&](std::int64_t b, std::int64_t) {
        const T* xb = x + b * D;
        const T* pb = x_prop + b * D;
        const T* sx = score_x + b * D;
        const T* sp = score_prop + b * D;
        const double hb = static_cast<double>(h(b));
        double fwd = 0.0, bwd = 0.0;  // chunk by chunk, as every row reduction
        for_chunks(D, [&](std::int64_t c0, std::int64_t m) {
            LaneSum8 f8, b8;
            for (std::int64_t j = 0; j < m; ++j) {
                const std::int64_t i = c0 + j;
                const MalaTerms t = mala_terms(xb[i], sx[i], pb[i], sp[i], hb);
                f8.a[j % 8] += t.fwd;
                b8.a[j % 8] += t.bwd;
            }
            fwd += f8.total();
            bwd += b8.total();
        });
        double u;
        fill_range<UniformBlock<double>>(st, mala_uniform_element(first_sample, b), 1, &u);
        const bool take = mala_accepts(mala_log_ratio(logp_x[b], logp_prop[b], fwd, bwd, hb), u);
        accepted[b] = take ? 1 : 0;
        const T* xs = take ? pb : xb;
        const T* ss = take ? sp : sx;
        if (xs != x_out + b * D) std::copy(xs, xs + D, x_out + b * D);
        if (ss != score_out + b * D) std::copy(ss, ss + D, score_out + b * D);
        logp_out[b] = take ? logp_prop[b] : logp_x[b];
    }, B * D);
}

#define SCOREKIT_INSTANTIATE(T)                                                                   \
    template void affine_step<T>(const T*, const T*, std::int64_t, std::int64_t, RowParam<T>,     \
                                 RowParam<T>, RowParam<T>, Stream, std::uint64_t, T*, T*);        \
    template void langevin_corrector<T>(const T*, const T*, std::int64_t, std::int64_t, double,   \
                                        RowParam<T>, bool, Stream, std::uint64_t, T*, T*,         \
                                        double*);                                                 \
    template void mala_accept<T>(const T*, const T*, const double*, const T*, const T*,           \
                                 const double*, std::int64_t, std::int64_t, RowParam<T>, Stream,  \
                                 std::uint64_t, T*, T*, double*, std::uint8_t*);
SCOREKIT_INSTANTIATE(float)
SCOREKIT_INSTANTIATE(double)
#undef SCOREKIT_INSTANTIATE

}  // namespace cpu
}  // namespace scorekit
