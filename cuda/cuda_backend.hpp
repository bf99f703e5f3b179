// Host entry points of the CUDA backend. Pointers are device pointers (a
// RowParam's values too); `stream` is a cudaStream_t (0: the legacy default
// stream) and `device` the CUDA device the pointers live on. Every function
// enqueues its kernels on the stream and returns without synchronising; a
// launch error raises std::runtime_error.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "grid.hpp"
#include "scorekit/gmm.hpp"
#include "scorekit/kernels.hpp"
#include "scorekit/philox.hpp"
#include "scorekit/trace.hpp"

namespace scorekit {
namespace cuda {

enum class NoiseKind { Normal = 0, Uniform = 1, Rademacher = 2 };

// Devices the runtime can see; 0 without a driver or a GPU (never throws).
// `why`, when given, receives the runtime's reason for 0 ("" otherwise).
int device_count(std::string* why = nullptr);

// Threads per chunk of the row reductions (grid.hpp's chunk_threads): 0 chooses
// by kernel, size and device (the default), 8 or 32 always takes that many, in every
// thread of the process. The environment variable SCOREKIT_CUDA_CHUNK_THREADS,
// read at first use, gives its first value ("8" or "32"; unset or anything
// else: 0). The bits are the same for every setting; only the speed differs.
int chunk_threads_setting();
// Sets it (another value than 0, 8 or 32 raises std::invalid_argument).
void set_chunk_threads(int threads);

// nbytes of host memory to device memory dst, on `stream`, through page-locked
// staging, so the host does not wait for the stream (staging.hpp); the host
// buffer may be released when the call returns.
void upload(const void* host, std::size_t nbytes, void* dst, int device, void* stream);

template <class T>
void fill_noise(NoiseKind kind, Stream st, std::uint64_t offset, std::int64_t n, T* out, int device,
                void* stream);

// Rows of D normals rescaled in place to norm sqrt(D) (sphere probes). `work`
// holds sphere_work(rows, D) doubles.
template <class T>
void sphere_rows(T* v, std::int64_t rows, std::int64_t D, double* work, int device,
                 void* stream);

inline std::int64_t sphere_work(std::int64_t rows, std::int64_t D) {
    return D <= kShortRow ? 0 : rows + reduce_scratch(rows, D, kReduceChunk, 1);
}

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

// Rows summed in the CPU's order: `partial` holds dsm_work(B, D) doubles,
// row_loss B doubles; row_loss_out (may be null) receives them rounded to T.
template <class T>
void dsm_loss(const T* score, const T* noise, std::int64_t B, std::int64_t D, RowParam<T> sigma,
              bool weight_is_sigma2, RowParam<T> weight, double batch_scale, Stream st,
              std::uint64_t first_sample, double* partial, double* row_loss, T* row_loss_out,
              T* grad, int device, void* stream);

// Sliced score matching, probes regenerated (probe k of sample b is stream row
// (first_sample + b) * K + k): per-sample losses into row_loss (and rounded to T
// into row_loss_out, when not null); grad_score and grad_jvp (each may be null)
// as on the CPU. `work` holds ssm_work(B, K, D) doubles.
template <class T>
void ssm_loss(ProbeKind kind, Stream st, std::uint64_t first_sample, const T* score, const T* jvp,
              std::int64_t B, std::int64_t K, std::int64_t D, bool variance_reduced,
              double batch_scale, double* work, double* row_loss, T* row_loss_out, T* grad_score,
              T* grad_jvp, int device, void* stream);

inline std::int64_t ssm_work(std::int64_t B, std::int64_t K, std::int64_t D) {
    K = ssm_probes_needed(K, D);
    return reduce_scratch(B * K, D, kReduceChunk, 2) + 4 * B * K + B;
}

// Implicit score matching: row_loss[b] = |s_b|^2 / 2 + trace[b] (and rounded to T
// into row_loss_out, when not null); grad_score (may be null) = batch_scale *
// score. `work` holds ism_work(B, D) doubles.
template <class T>
void ism_loss(const T* score, const T* trace, std::int64_t B, std::int64_t D, double batch_scale,
              double* work, double* row_loss, T* row_loss_out, T* grad_score, int device,
              void* stream);

inline std::int64_t ism_work(std::int64_t B, std::int64_t D) {
    return reduce_scratch(B, D, kReduceChunk, 1);
}

// Langevin corrector (the CPU's langevin_corrector): eps into step (B doubles).
// `work` holds corrector_work(B, D) doubles.
template <class T>
void langevin_corrector(const T* x, const T* score, std::int64_t B, std::int64_t D, double snr,
                        RowParam<T> alpha, bool per_sample, Stream st, std::uint64_t first_sample,
                        T* out, T* out_mean, double* step, double* work, int device,
                        void* stream);

inline std::int64_t corrector_work(std::int64_t B, std::int64_t D) {
    return reduce_scratch(B, D, kReduceChunk, 2) + 4 * B + 2;
}

// MALA accept / reject (the CPU's mala_accept); outputs must not overlap the
// inputs. `work` holds mala_work(B, D) doubles.
template <class T>
void mala_accept(const T* x, const T* score_x, const double* logp_x, const T* x_prop,
                 const T* score_prop, const double* logp_prop, std::int64_t B, std::int64_t D,
                 RowParam<T> h, Stream st, std::uint64_t first_sample, T* x_out, T* score_out,
                 double* logp_out, std::uint8_t* accepted, double* work, int device,
                 void* stream);

inline std::int64_t mala_work(std::int64_t B, std::int64_t D) {
    return reduce_scratch(B, D, kReduceChunk, 2);
}

// Probe rows for a round of trace estimation: out row b * m + i (D elements) is
// stream row row0 + b * K + i, sphere rows normalised (the CPU's fill_probes with
// row0 = k0). `work` holds sphere_work(B * m, D) doubles for sphere probes.
template <class T>
void probe_rows(ProbeKind kind, Stream st, std::int64_t B, std::int64_t m, std::int64_t D,
                std::int64_t K, std::uint64_t row0, T* out, double* work, int device,
                void* stream);

// Hutchinson samples t[b * m + i] = v . (A v) of the B * m rows of V and AV;
// samples with active[b] != 0 (active may be null: all) add theirs to
// moments[b] in order (add_round: the round is probes first .. first + m, and
// first_bad[b], where first_bad is not null and it is still negative, becomes
// the probe index of b's first non-finite sample). `work` holds
// trace_work(B, m, D) doubles.
template <class T>
void trace_moments(const T* V, const T* AV, std::int64_t B, std::int64_t m, std::int64_t D,
                   const std::uint8_t* active, double* t, RunningMoments* moments,
                   std::int64_t first, std::int64_t* first_bad, double* work, int device,
                   void* stream);

inline std::int64_t trace_work(std::int64_t B, std::int64_t m, std::int64_t D) {
    return reduce_scratch(B * m, D, kReduceChunk, 1);
}

// Diagonal samples v * (A v): running moments of element (b, j) in mean and m2
// (B * D each), after `count` earlier probes.
template <class T>
void diagonal_moments(const T* V, const T* AV, std::int64_t B, std::int64_t m, std::int64_t D,
                      double count, double* mean, double* m2, int device, void* stream);

// out[0] = the LaneSum8 sum of the B per-sample losses (the CPU's sum), divided
// by B for a mean (NaN when B = 0): a loss reduced on the device.
void reduce_losses(const double* rows, std::int64_t B, bool mean, double* out, int device,
                   void* stream);

// Gaussian mixture at the B rows of x (the CPU's gmm_eval; p's arrays on the
// device): log p into log_p, score and divergence when not null. The device's
// exp / log differ from the host's in the last places. `work` holds
// gmm_work(B, K, D, per-sample sigma) doubles.
template <class T>
void gmm_eval(const GmmParams& p, const T* x, std::int64_t B, RowParam<double> sigma,
              double* log_p, T* score, double* div, double* work, int device, void* stream);

inline std::int64_t gmm_work(std::int64_t B, std::int64_t K, std::int64_t D, bool per_sample) {
    return 2 * K + B * (K + D) + (per_sample ? B * 2 * K : 0);
}

// Doubles of `partial` dsm_loss needs.
inline std::int64_t dsm_work(std::int64_t B, std::int64_t D) {
    return reduce_scratch(B, D, kReduceChunk, 1);
}

}  // namespace cuda
}  // namespace scorekit
