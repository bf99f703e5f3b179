// Host entry points of the CUDA backend. Pointers are device pointers (a
// RowParam's values too); `stream` is a cudaStream_t (0: the legacy default
// stream) and `device` the CUDA device the pointers live on. Every function
// enqueues its kernels on the stream and returns without synchronising; a
// launch error raises std::runtime_error.
#pragma once

#include <cstdint>
#include <string>

#include "scorekit/kernels.hpp"
#include "scorekit/philox.hpp"

namespace scorekit {
namespace cuda {

enum class NoiseKind { Normal = 0, Uniform = 1, Rademacher = 2 };

// Devices the runtime can see; 0 without a driver or a GPU (never throws).
// `why`, when given, receives the runtime's reason for 0 ("" otherwise).
int device_count(std::string* why = nullptr);

template <class T>
void fill_noise(NoiseKind kind, Stream st, std::uint64_t offset, std::int64_t n, T* out, int device,
                void* stream);

// Rows of D normals rescaled in place to norm sqrt(D) (sphere probes).
template <class T>
void sphere_rows(T* v, std::int64_t rows, std::int64_t D, int device, void* stream);

template <class T>
void perturb(const T* x, std::int64_t B, std::int64_t D, RowParam<T> scale, RowParam<T> sigma,
             Stream st, std::uint64_t first_sample, T* out, int device, void* stream);

template <class T>
void langevin_step(const T* x, const T* score, std::int64_t B, std::int64_t D,
                   RowParam<T> step_size, Stream st, std::uint64_t first_sample, T* out,
                   int device, void* stream);

// x_mean = a x + c score (into out_mean when not null), out = x_mean + g z.
template <class T>
void affine_step(const T* x, const T* score, std::int64_t B, std::int64_t D, RowParam<T> a,
                 RowParam<T> c, RowParam<T> g, Stream st, std::uint64_t first_sample, T* out,
                 T* out_mean, int device, void* stream);

// Rows summed in chunks of kReduceChunk: `partial` holds B * chunks doubles
// (chunks = ceil(D / kReduceChunk), at least 1), row_loss B doubles.
template <class T>
void dsm_loss(const T* score, const T* noise, std::int64_t B, std::int64_t D, RowParam<T> sigma,
              bool weight_is_sigma2, RowParam<T> weight, double batch_scale, Stream st,
              std::uint64_t first_sample, double* partial, double* row_loss, T* grad, int device,
              void* stream);

}  // namespace cuda
}  // namespace scorekit
