// CPU backend: OpenMP loops over the functors of cpp/include/scorekit.
#pragma once

#include <cstdint>

#include "scorekit/kernels.hpp"
#include "scorekit/philox.hpp"

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
template <class T>
void perturb(const T* x, std::int64_t B, std::int64_t D, RowParam<T> scale, RowParam<T> sigma,
             Stream st, T* out);

template <class T>
void langevin_step(const T* x, const T* score, std::int64_t B, std::int64_t D,
                   RowParam<T> step_size, Stream st, T* out);

// Per-sample losses L_b into row_loss[B] (double); grad (may be null, may
// equal score) gets d(reduced loss)/d(score) with batch_scale = 1/B for a mean.
// noise == nullptr: z is regenerated from st. weight_is_sigma2: w_b = sigma_b^2,
// otherwise w_b = weight(b).
template <class T>
void dsm_loss(const T* score, const T* noise, std::int64_t B, std::int64_t D, RowParam<T> sigma,
              bool weight_is_sigma2, RowParam<T> weight, double batch_scale, Stream st,
              double* row_loss, T* grad);

// Deterministic LaneSum8 sum of v[0 .. n).
double sum(const double* v, std::int64_t n);

}  // namespace cpu
}  // namespace scorekit
