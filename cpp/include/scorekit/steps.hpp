// Per-element and per-row math of the sampler steps: the affine noisy update
// shared by the predictors and correctors, the signal-to-noise step size and
// the Metropolis-Hastings test of MALA.
#pragma once

#include <cmath>
#include <cstdint>

#include "config.hpp"
#include "detmath.hpp"

namespace scorekit {

// x_mean = a x + c score; x_next = x_mean + g z. Every predictor of the score-SDE
// samplers (reverse diffusion, Euler-Maruyama, ancestral) and the Langevin
// corrector is this update with per-sample (a, c, g).
template <class T>
struct AffineStep {
    T a, c, g;
    SCOREKIT_HD SCOREKIT_INLINE T mean(T x, T score) const { return a * x + c * score; }
    SCOREKIT_HD SCOREKIT_INLINE T next(T x_mean, T z) const { return x_mean + g * z; }
};

// Langevin corrector step size from the target signal-to-noise ratio:
// eps = 2 alpha (snr |z| / |s|)^2 (norms per sample or batch means); 0 when the
// score norm is 0 (no direction to move in) or snr is 0.
SCOREKIT_HD SCOREKIT_INLINE double snr_step_size(double snr, double alpha, double noise_norm,
                                                 double score_norm) {
    if (!(score_norm > 0.0) || snr == 0.0) return score_norm != score_norm ? score_norm : 0.0;
    const double r = snr * noise_norm / score_norm;
    return 2.0 * alpha * r * r;
}

// MALA: log of the Metropolis-Hastings ratio for the proposal x' = x + h s(x) + sqrt(2h) z:
//   log p(x') - log p(x) + log q(x | x') - log q(x' | x),
//   log q(a | b) = -|a - b - h s(b)|^2 / (4 h)
// from the two squared norms fwd = |x' - x - h s(x)|^2, bwd = |x - x' - h s(x')|^2.
SCOREKIT_HD SCOREKIT_INLINE double mala_log_ratio(double logp_x, double logp_prop, double fwd,
                                                  double bwd, double h) {
    return (logp_prop - logp_x) - (bwd - fwd) / (4.0 * h);
}

// One element's terms of fwd and bwd, in double: d = x' - x, then
// (d - h s(x))^2 and (-d - h s(x'))^2. Each norm is summed over its row in the
// order of every row reduction (trace.hpp's chunked_dot: LaneSum8 over chunks
// of kReduceChunk elements, chunk sums added left to right).
struct MalaTerms {
    double fwd, bwd;
};
SCOREKIT_HD SCOREKIT_INLINE MalaTerms mala_terms(double x, double score_x, double x_prop,
                                                 double score_prop, double h) {
    const double d = x_prop - x;
    const double f = d - h * score_x;
    const double r = -d - h * score_prop;
    return {f * f, r * r};
}

// The uniform of MALA's test for sample b (global index first_sample + b): float64
// uniform element 2^62 + first_sample + b of the step's stream, far past its normals.
SCOREKIT_HD SCOREKIT_INLINE std::uint64_t mala_uniform_element(std::uint64_t first_sample,
                                                               std::int64_t b) {
    return (std::uint64_t(1) << 62) + first_sample + static_cast<std::uint64_t>(b);
}

// Accept when log u < log ratio (the deterministic log, so every backend decides
// alike; u lies in (0, 1)); NaN anywhere rejects (the comparison is false).
SCOREKIT_HD SCOREKIT_INLINE bool mala_accepts(double log_ratio, double u) {
    return detmath::log(u) < log_ratio;
}

}  // namespace scorekit
