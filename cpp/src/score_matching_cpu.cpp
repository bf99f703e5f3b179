// Sliced and implicit score matching: probes regenerated per sample, dot
// products, losses and gradients in one pass per probe.
#include <algorithm>
#include <vector>

#include "cpu_backend.hpp"
#include "parallel.hpp"
#include "probe_rows.hpp"

namespace scorekit {
namespace cpu {

template <class T>
void ssm_loss(ProbeKind kind, Stream st, std::uint64_t first_sample, const T* score,
              const T* jvp, std::int64_t B, std::int64_t K, std::int64_t D,
              bool variance_reduced, double batch_scale, double* row_loss, T* grad_score,
              T* grad_jvp) {
    K = ssm_probes_needed(K, D);
    const T jvp_scale = static_cast<T>(batch_scale / static_cast<double>(K));
    const std::int64_t rows = std::max<std::int64_t>(1, kTile / std::max<std::int64_t>(D, 1));
    for_each_tile(B, rows, [&](std::int64_t b0, std::int64_t nb) {
        std::vector<T> v(static_cast<std::size_t>(D));
        for (std::int64_t b = b0; b < b0 + nb; ++b) {
            const T* s = score + b * D;
            T* gs = grad_score ? grad_score + b * D : nullptr;
            const double ss = variance_reduced ? chunked_dot(s, s, D) : 0.0;
            double total = 0.0;
            for (std::int64_t k = 0; k < K; ++k) {
                const std::int64_t row = b * K + k;
                const std::uint64_t stream_row =
                    (first_sample + static_cast<std::uint64_t>(b)) * static_cast<std::uint64_t>(K) +
                    static_cast<std::uint64_t>(k);
                probe_row(kind, st, stream_row, D, v.data());
                const double a = chunked_dot(v.data(), jvp + row * D, D);
                const double c = variance_reduced ? 0.0 : chunked_dot(v.data(), s, D);
                total += ssm_term(a, c, ss, variance_reduced);
                if (grad_jvp) {
                    T* gj = grad_jvp + row * D;
                    for (std::int64_t j = 0; j < D; ++j) gj[j] = jvp_scale * v[j];
                }
                if (gs && !variance_reduced) {  // (scale / K) sum_k c_k v_k, summed in k order
                    const T ck = static_cast<T>(batch_scale * c / static_cast<double>(K));
                    if (k == 0)
                        for (std::int64_t j = 0; j < D; ++j) gs[j] = ck * v[j];
                    else
                        for (std::int64_t j = 0; j < D; ++j) gs[j] = gs[j] + ck * v[j];
                }
            }
            row_loss[b] = total / static_cast<double>(K);
            if (gs && variance_reduced) {
                const T scale = static_cast<T>(batch_scale);
                for (std::int64_t j = 0; j < D; ++j) gs[j] = scale * s[j];
            }
        }
    }, B * K * D);
}

template <class T>
void ism_loss(const T* score, const T* trace, std::int64_t B, std::int64_t D, double batch_scale,
              double* row_loss, T* grad_score) {
    const T scale = static_cast<T>(batch_scale);
    for_each_tile(B, 1, [&](std::int64_t b, std::int64_t) {
        const T* s = score + b * D;
        row_loss[b] = ism_term(chunked_dot(s, s, D), static_cast<double>(trace[b]));
        if (grad_score) {
            T* g = grad_score + b * D;
            for (std::int64_t j = 0; j < D; ++j) g[j] = scale * s[j];
        }
    }, B * D);
}

#define SCOREKIT_INSTANTIATE(T)                                                                  \
    template void ssm_loss<T>(ProbeKind, Stream, std::uint64_t, const T*, const T*, std::int64_t, \
                              std::int64_t, std::int64_t, bool, double, double*, T*, T*);        \
    template void ism_loss<T>(const T*, const T*, std::int64_t, std::int64_t, double, double*, T*);
SCOREKIT_INSTANTIATE(float)
SCOREKIT_INSTANTIATE(double)
#undef SCOREKIT_INSTANTIATE

}  // namespace cpu
}  // namespace scorekit
