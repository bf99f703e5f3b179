// Gaussian mixture with diagonal components, convolved with N(0, sigma^2 I):
// exact log-density, score and score divergence of one sample.
//
// Component k has log-weight lw_k, mean mu_k and variances var_k (D each). At
// noise level sigma its variances are v_kj = var_kj + sigma^2, and for x:
//   l_k    = lw_k - (sum_j (x_j - mu_kj)^2 / v_kj + c_k) / 2,  c_k = sum_j log(2 pi v_kj)
//   log p  = logsumexp_k l_k
//   r_k    = exp(l_k - log p)                     (responsibilities)
//   g_kj   = -(x_j - mu_kj) / v_kj                (score of component k)
//   s_j    = sum_k r_k g_kj                       (score)
//   div    = sum_k r_k (|g_k - s|^2 - sum_j 1 / v_kj)
// (the same as sum_k r_k (|g_k|^2 - sum_j 1/v_kj) - |s|^2, without its
// cancellation far from the components). All in double; one pass over the
// components for l_k, one for s, and one more for the divergence.
#pragma once

#include <cmath>
#include <cstdint>

#include "config.hpp"

namespace scorekit {

struct GmmParams {
    const double* means;        // (K, D)
    const double* vars;         // (K, D)
    const double* log_weights;  // (K,)
    std::int64_t K;
    std::int64_t D;
};

// Per-component constants at one noise level: c_k and sum_j 1 / v_kj, component
// k's at index k * stride of each (a GPU thread's own levels are interleaved
// with the other threads', so that a warp's accesses are adjacent).
struct GmmLevel {
    double* log_norm;  // (K,) c_k
    double* inv_sum;   // (K,)
    std::int64_t stride = 1;
    SCOREKIT_HD SCOREKIT_INLINE double& c(std::int64_t k) const { return log_norm[k * stride]; }
    SCOREKIT_HD SCOREKIT_INLINE double& inv(std::int64_t k) const { return inv_sum[k * stride]; }
};

// Component k's constants (each component's on its own: they may be computed
// in parallel).
SCOREKIT_HD SCOREKIT_INLINE void gmm_level_of(const GmmParams& p, double sigma2, std::int64_t k,
                                              GmmLevel lv) {
    using std::log;
    constexpr double kTwoPi = 6.28318530717958647692;
    double c = 0.0, inv = 0.0;
    for (std::int64_t j = 0; j < p.D; ++j) {
        const double v = p.vars[k * p.D + j] + sigma2;
        c += log(kTwoPi * v);
        inv += 1.0 / v;
    }
    lv.c(k) = c;
    lv.inv(k) = inv;
}

SCOREKIT_HD SCOREKIT_INLINE void gmm_level(const GmmParams& p, double sigma2, GmmLevel lv) {
    for (std::int64_t k = 0; k < p.K; ++k) gmm_level_of(p, sigma2, k, lv);
}

// One sample x (D values). work holds K + D doubles, element e at work[e * ws]
// (ws = 1: contiguous; a GPU thread's interleaved with the other threads').
// Writes score (may be null) and *div (may be null); returns log p(x).
template <class T>
SCOREKIT_HD SCOREKIT_INLINE double gmm_row(const GmmParams& p, const GmmLevel& lv, double sigma2,
                                           const T* x, double* work, std::int64_t ws, T* score,
                                           double* div) {
    using std::exp;
    using std::log;
    const auto l = [&](std::int64_t k) -> double& { return work[k * ws]; };  // l_k, then r_k
    double top = -HUGE_VAL;
    for (std::int64_t k = 0; k < p.K; ++k) {
        const double* mu = p.means + k * p.D;
        const double* var = p.vars + k * p.D;
        double q = 0.0;
        for (std::int64_t j = 0; j < p.D; ++j) {
            const double d = static_cast<double>(x[j]) - mu[j];
            q += d * d / (var[j] + sigma2);
        }
        l(k) = p.log_weights[k] - 0.5 * (q + lv.c(k));
        top = l(k) > top ? l(k) : top;
    }
    double total = 0.0;
    for (std::int64_t k = 0; k < p.K; ++k) total += exp(l(k) - top);
    const double log_p = top + log(total);
    if (!score && !div) return log_p;
    for (std::int64_t k = 0; k < p.K; ++k) l(k) = exp(l(k) - log_p);
    const auto s = [&](std::int64_t j) -> double& { return work[(p.K + j) * ws]; };  // s_j
    for (std::int64_t j = 0; j < p.D; ++j) s(j) = 0.0;  // summed over k in order
    for (std::int64_t k = 0; k < p.K; ++k) {
        const double* mu = p.means + k * p.D;
        const double* var = p.vars + k * p.D;
        for (std::int64_t j = 0; j < p.D; ++j)
            s(j) -= l(k) * ((static_cast<double>(x[j]) - mu[j]) / (var[j] + sigma2));
    }
    if (score)
        for (std::int64_t j = 0; j < p.D; ++j) score[j] = static_cast<T>(s(j));
    if (div) {
        double acc = 0.0;
        for (std::int64_t k = 0; k < p.K; ++k) {
            const double* mu = p.means + k * p.D;
            const double* var = p.vars + k * p.D;
            double e2 = 0.0;
            for (std::int64_t j = 0; j < p.D; ++j) {
                const double e = -(static_cast<double>(x[j]) - mu[j]) / (var[j] + sigma2) - s(j);
                e2 += e * e;
            }
            acc += l(k) * (e2 - lv.inv(k));
        }
        *div = acc;
    }
    return log_p;
}

}  // namespace scorekit
