// Per-element and per-row math of the fused kernels. Backends only loop over
// these; nothing here knows about threads, tiles or devices.
#pragma once

#include <cmath>

#include "config.hpp"

namespace scorekit {

// A per-sample parameter: either one value for every sample or values[b].
template <class T>
struct RowParam {
    const T* values;  // nullptr: use scalar
    T scalar;
    SCOREKIT_HD SCOREKIT_INLINE T operator()(std::int64_t b) const {
        return values ? values[b] : scalar;
    }
};

// perturb: x_tilde = scale * x + sigma * z
template <class T>
SCOREKIT_HD SCOREKIT_INLINE T perturb_value(T x, T z, T scale, T sigma) {
    return scale * x + sigma * z;
}

// Unadjusted Langevin: x + step * score + sqrt(2 step) * z
template <class T>
struct LangevinRow {
    T step;
    T noise_scale;
    SCOREKIT_HD SCOREKIT_INLINE explicit LangevinRow(T step_size)
        : step(step_size), noise_scale(sqrt_of(T(2) * step_size)) {}
    SCOREKIT_HD SCOREKIT_INLINE T apply(T x, T score, T z) const {
        return x + step * score + noise_scale * z;
    }
};

// Deterministic sum of doubles: position p of a run goes to lane p % 8, and the
// lanes are combined as ((a0+a4)+(a2+a6)) + ((a1+a5)+(a3+a7)).
struct LaneSum8 {
    double a[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    SCOREKIT_HD SCOREKIT_INLINE double total() const {
        const double s0 = a[0] + a[4], s1 = a[1] + a[5], s2 = a[2] + a[6], s3 = a[3] + a[7];
        return (s0 + s2) + (s1 + s3);
    }
};

// Rows longer than this are summed in chunks of this many elements; the chunk
// sums are then added left to right.
constexpr std::int64_t kReduceChunk = 4096;

// f(c0, m) for the chunks [c0, c0 + m) of a row of n elements, left to right:
// the order in which a row's chunk sums are added.
template <class F>
SCOREKIT_HD SCOREKIT_INLINE void for_chunks(std::int64_t n, F&& f) {
    for (std::int64_t c0 = 0; c0 < n; c0 += kReduceChunk)
        f(c0, n - c0 < kReduceChunk ? n - c0 : kReduceChunk);
}

template <class T>
SCOREKIT_HD SCOREKIT_INLINE double lane_sum(const T* v, std::int64_t n) {
    LaneSum8 acc;
    std::int64_t p = 0;
    for (; p + 8 <= n; p += 8)
        for (int k = 0; k < 8; ++k) acc.a[k] += static_cast<double>(v[p + k]);
    for (int k = 0; p < n; ++p, ++k) acc.a[k] += static_cast<double>(v[p]);
    return acc.total();
}

// Denoising score matching, one sample b with noise scale sigma and weight w.
// The residual is formed multiplied by sigma, so a tiny sigma does not overflow
// z / sigma (with w = sigma^2 a huge one is safe too; with another weight,
// sigma * score must stay finite in T and sum q^2 in double):
//   q_j    = sigma * score_j + z_j                 (in T; = sigma (score_j + z_j / sigma))
//   L_b    = 0.5 * loss_scale * sum_j q_j^2        (sum in double, LaneSum8 per chunk)
//   grad_j = grad_scale * q_j                      (in T)
// with loss_scale = w / sigma^2 and grad_scale = (T)(w * batch_scale / sigma),
// which are exactly 1 and (T)(sigma * batch_scale) for the weight w = sigma^2.
template <class T>
struct DsmRow {
    T sigma;
    T grad_scale;
    double loss_scale;
    SCOREKIT_HD SCOREKIT_INLINE DsmRow(T sigma_b, bool weight_is_sigma2, double weight,
                                       double batch_scale)
        : sigma(sigma_b) {
        const double s = static_cast<double>(sigma_b);
        if (weight_is_sigma2) {
            loss_scale = 1.0;
            grad_scale = static_cast<T>(s * batch_scale);
        } else {
            loss_scale = (weight / s) / s;
            grad_scale = static_cast<T>((weight / s) * batch_scale);
        }
    }

    SCOREKIT_HD SCOREKIT_INLINE T residual(T score, T z) const { return sigma * score + z; }

    // Sum of squared residuals over one run of at most kReduceChunk elements;
    // writes the gradient when grad is not null.
    SCOREKIT_HD SCOREKIT_INLINE double run(const T* score, const T* z, T* grad,
                                           std::int64_t n) const {
        return grad ? run_impl<true>(score, z, grad, n) : run_impl<false>(score, z, grad, n);
    }

    template <bool kGrad>
    SCOREKIT_HD SCOREKIT_INLINE double run_impl(const T* score, const T* z, T* grad,
                                                std::int64_t n) const {
        LaneSum8 acc;
        std::int64_t p = 0;
        for (; p + 8 <= n; p += 8) {
            for (int k = 0; k < 8; ++k) {
                const T r = residual(score[p + k], z[p + k]);
                if constexpr (kGrad) grad[p + k] = grad_scale * r;
                acc.a[k] += static_cast<double>(r) * static_cast<double>(r);
            }
        }
        for (int k = 0; p < n; ++p, ++k) {
            const T r = residual(score[p], z[p]);
            if constexpr (kGrad) grad[p] = grad_scale * r;
            acc.a[k] += static_cast<double>(r) * static_cast<double>(r);
        }
        return acc.total();
    }
};

// The per-sample parameters of a dsm_loss call: rows(b) is sample b's DsmRow,
// with w_b = sigma_b^2 when weight_is_sigma2 and weight(b) otherwise.
template <class T>
struct DsmRows {
    RowParam<T> sigma;
    bool weight_is_sigma2;
    RowParam<T> weight;
    double batch_scale;
    SCOREKIT_HD SCOREKIT_INLINE DsmRow<T> operator()(std::int64_t b) const {
        return DsmRow<T>(sigma(b), weight_is_sigma2,
                         weight_is_sigma2 ? 0.0 : static_cast<double>(weight(b)), batch_scale);
    }
};

}  // namespace scorekit
