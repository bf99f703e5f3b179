// Per-row math of trace estimation and sliced / implicit score matching:
// deterministic dot products, running moments, probe scaling and the SSM / ISM
// terms. Backends only loop over these.
#pragma once

#include <cstdint>

#include "config.hpp"
#include "kernels.hpp"

namespace scorekit {

// Dot product of a[0 .. n) and b[0 .. n) in double, in the fixed order of the
// reductions: products summed with LaneSum8 over chunks of kReduceChunk
// elements, chunk sums added left to right.
template <class T>
SCOREKIT_HD SCOREKIT_INLINE double chunked_dot(const T* a, const T* b, std::int64_t n) {
    double total = 0.0;
    for_chunks(n, [&](std::int64_t c0, std::int64_t m) {
        LaneSum8 acc;
        std::int64_t p = 0;
        for (; p + 8 <= m; p += 8)
            for (int k = 0; k < 8; ++k)
                acc.a[k] += static_cast<double>(a[c0 + p + k]) * static_cast<double>(b[c0 + p + k]);
        for (int k = 0; p < m; ++p, ++k)
            acc.a[k] += static_cast<double>(a[c0 + p]) * static_cast<double>(b[c0 + p]);
        total += acc.total();
    });
    return total;
}

// Welford's running mean and sum of squared deviations (m2) of a sequence.
struct RunningMoments {
    double count;
    double mean;
    double m2;
    SCOREKIT_HD SCOREKIT_INLINE void add(double x) {
        count += 1.0;
        const double delta = x - mean;
        mean += delta / count;
        m2 += delta * (x - mean);
    }
};

// A finite double: its exponent field is not all ones.
SCOREKIT_HD SCOREKIT_INLINE bool is_finite(double x) {
    return (bits_of(x) & 0x7ff0000000000000ULL) != 0x7ff0000000000000ULL;
}

// One sample's round of Hutchinson samples t[0 .. m) (probes first .. first + m)
// added to its moments in probe order. first_bad, where given and still negative,
// becomes the probe index of the round's first non-finite sample.
SCOREKIT_HD SCOREKIT_INLINE void add_round(RunningMoments& acc, const double* t, std::int64_t m,
                                           std::int64_t first, std::int64_t* first_bad) {
    for (std::int64_t i = 0; i < m; ++i) {
        if (first_bad && *first_bad < 0 && !is_finite(t[i])) *first_bad = first + i;
        acc.add(t[i]);
    }
}

// Diagonal estimation, element e = (b, j) of the B x D estimate: the running
// moments of v_j (A v)_j over the m probes of a round (rows b * m + i of V and
// AV), after `count` earlier probes; mean[e] and m2[e] updated in place.
template <class T>
SCOREKIT_HD SCOREKIT_INLINE void diagonal_element(const T* V, const T* AV, std::int64_t m,
                                                  std::int64_t D, std::int64_t e, double count,
                                                  double* mean, double* m2) {
    const std::int64_t b = e / D, j = e - b * D;
    RunningMoments acc{count, mean[e], m2[e]};
    for (std::int64_t i = 0; i < m; ++i) {
        const std::int64_t at = (b * m + i) * D + j;
        acc.add(static_cast<double>(V[at]) * static_cast<double>(AV[at]));
    }
    mean[e] = acc.mean;
    m2[e] = acc.m2;
}

// Probe kinds. A sphere probe is a Gaussian row g rescaled to norm sqrt(D):
// v_j = (T)(g_j * sqrt(D / sum g^2)), the factor and product in double.
enum class ProbeKind : int { Rademacher = 0, Gaussian = 1, Sphere = 2 };

SCOREKIT_HD SCOREKIT_INLINE double sphere_factor(double sum_squares, std::int64_t D) {
    return sum_squares > 0.0 ? sqrt_of(static_cast<double>(D) / sum_squares) : 0.0;
}

template <class T>
SCOREKIT_HD SCOREKIT_INLINE void scale_row(T* v, std::int64_t D, double factor) {
    for (std::int64_t j = 0; j < D; ++j) v[j] = static_cast<T>(static_cast<double>(v[j]) * factor);
}

// Sliced score matching for one probe v of one sample, from
//   a = v . (J v),  c = v . s,  ss = |s|^2:
//   SSM:    L = a + c^2 / 2        SSM-VR: L = a + ss / 2
// The loss of a sample is the mean of L over its K probes. Gradients of
// scale * (that mean): d/d(Jv) = (scale / K) v; d/ds = (scale / K) sum_k c_k v_k
// (SSM) or scale * s (SSM-VR).
SCOREKIT_HD SCOREKIT_INLINE double ssm_term(double a, double c, double ss, bool variance_reduced) {
    return variance_reduced ? a + 0.5 * ss : a + 0.5 * c * c;
}

// The probes an SSM call must draw: K, or one for rows of no elements (each of K
// probes would add the same 0 terms; the loss, their mean, is the same bits).
SCOREKIT_HD SCOREKIT_INLINE std::int64_t ssm_probes_needed(std::int64_t K, std::int64_t D) {
    return D == 0 && K > 1 ? 1 : K;
}

// Implicit score matching for one sample: L = |s|^2 / 2 + tr(J).
SCOREKIT_HD SCOREKIT_INLINE double ism_term(double ss, double trace) { return 0.5 * ss + trace; }

}  // namespace scorekit
