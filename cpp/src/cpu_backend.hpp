// CPU backend: OpenMP loops over the functors of cpp/include/scorekit.
#pragma once

#include <cstdint>

#include "scorekit/gmm.hpp"
#include "scorekit/kernels.hpp"
#include "scorekit/philox.hpp"
#include "scorekit/steps.hpp"
#include "scorekit/trace.hpp"

namespace scorekit {
namespace cpu {

void set_num_threads(int n);
int get_num_threads();
bool openmp_enabled();

enum class NoiseKind { Normal, Uniform, Rademacher };

// out[k] = element (offset + k) of the stream, k < n.
template <class T>
void fill_noise(NoiseKind kind, Stream st, std::uint64_t offset, std::int64_t n, T* out);

// Arrays are C-contiguous with B rows of D elements; out may equal x.
// The noise of position j of sample b is stream element (first_sample + b) * D + j.
template <class T>
void perturb(const T* x, std::int64_t B, std::int64_t D, RowParam<T> scale, RowParam<T> sigma,
             Stream st, std::uint64_t first_sample, T* out);

template <class T>
void langevin_step(const T* x, const T* score, std::int64_t B, std::int64_t D,
                   RowParam<T> step_size, Stream st, std::uint64_t first_sample, T* out);

// Per-sample losses L_b into row_loss[B] (double); grad (may be null, may
// equal score) gets d(reduced loss)/d(score) with batch_scale = 1/B for a mean.
// noise == nullptr: z is regenerated from st. weight_is_sigma2: w_b = sigma_b^2,
// otherwise w_b = weight(b).
template <class T>
void dsm_loss(const T* score, const T* noise, std::int64_t B, std::int64_t D, RowParam<T> sigma,
              bool weight_is_sigma2, RowParam<T> weight, double batch_scale, Stream st,
              std::uint64_t first_sample, double* row_loss, T* grad);

// Probes: out holds B * m rows of D elements; row (b, i) is probe k0 + i of
// sample b, which is row b * K + k0 + i of the stream viewed as rows of D.
template <class T>
void fill_probes(ProbeKind kind, Stream st, std::int64_t B, std::int64_t m, std::int64_t D,
                 std::int64_t K, std::int64_t k0, T* out);

// Hutchinson samples t = v . (A v) for the B * m rows (b, i) of V and AV, into
// t[b * m + i]; samples with active[b] != 0 add theirs, in order, to
// moments[b] (add_round: the round is probes first .. first + m, and
// first_bad[b], where first_bad is not null and it is still negative, becomes
// the probe index of b's first non-finite sample). active may be null (every
// sample active).
template <class T>
void trace_moments(const T* V, const T* AV, std::int64_t B, std::int64_t m, std::int64_t D,
                   const std::uint8_t* active, double* t, RunningMoments* moments,
                   std::int64_t first, std::int64_t* first_bad);

// Diagonal samples v * (A v), elementwise: moments of element (b, j) in
// mean[b * D + j] and m2[b * D + j], all after `count` earlier probes.
template <class T>
void diagonal_moments(const T* V, const T* AV, std::int64_t B, std::int64_t m, std::int64_t D,
                      double count, double* mean, double* m2);

// Sliced score matching with probes regenerated from st (probe k of sample b
// is stream row (first_sample + b) * K + k): per-sample losses into row_loss; grad_score and
// grad_jvp (each may be null) get the gradients of batch_scale * sum_b L_b.
template <class T>
void ssm_loss(ProbeKind kind, Stream st, std::uint64_t first_sample, const T* score,
              const T* jvp, std::int64_t B, std::int64_t K, std::int64_t D,
              bool variance_reduced, double batch_scale, double* row_loss, T* grad_score,
              T* grad_jvp);

// Implicit score matching: row_loss[b] = |s_b|^2 / 2 + trace[b]; grad_score
// (may be null) = batch_scale * score.
template <class T>
void ism_loss(const T* score, const T* trace, std::int64_t B, std::int64_t D, double batch_scale,
              double* row_loss, T* grad_score);

// Gaussian mixture convolved with N(0, sigma_b^2 I) at the B rows of x (D
// each): log p into log_p[b]; score (may be null) and divergence (may be null).
template <class T>
void gmm_eval(const GmmParams& p, const T* x, std::int64_t B, RowParam<double> sigma,
              double* log_p, T* score, double* div);

// Sampler steps. Noise of position j of sample b is stream element
// (first_sample + b) * D + j, so a batch split into shards draws the same noise.
// affine_step: out_mean (may be null) = a x + c score; out = out_mean + g z.
template <class T>
void affine_step(const T* x, const T* score, std::int64_t B, std::int64_t D, RowParam<T> a,
                 RowParam<T> c, RowParam<T> g, Stream st, std::uint64_t first_sample, T* out,
                 T* out_mean);

// Langevin corrector: eps_b = 2 alpha_b (snr |z| / |s|)^2 with per-sample norms or
// their batch means; then the affine step (1, eps_b, sqrt(2 eps_b)); eps into step.
template <class T>
void langevin_corrector(const T* x, const T* score, std::int64_t B, std::int64_t D, double snr,
                        RowParam<T> alpha, bool per_sample, Stream st, std::uint64_t first_sample,
                        T* out, T* out_mean, double* step);

// MALA accept / reject per sample: the chosen rows of (x, score, logp) into the
// outputs (which may be x, score_x, logp_x), accepted[b] = 1 when the proposal is taken.
template <class T>
void mala_accept(const T* x, const T* score_x, const double* logp_x, const T* x_prop,
                 const T* score_prop, const double* logp_prop, std::int64_t B, std::int64_t D,
                 RowParam<T> h, Stream st, std::uint64_t first_sample, T* x_out, T* score_out,
                 double* logp_out, std::uint8_t* accepted);

// Deterministic LaneSum8 sum of v[0 .. n).
double sum(const double* v, std::int64_t n);

}  // namespace cpu
}  // namespace scorekit
