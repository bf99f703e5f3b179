// Instantiates every function of cpp/include/scorekit in device code, so the
// shared math keeps compiling under nvcc. Built when SCOREKIT_CUDA is ON.
#include <cstdint>

#include "scorekit/gmm.hpp"
#include "scorekit/kernels.hpp"
#include "scorekit/noise.hpp"
#include "scorekit/steps.hpp"
#include "scorekit/trace.hpp"

namespace scorekit {
namespace cuda_check {

template <class Block, class T>
__global__ void fill_kernel(Stream st, std::uint64_t offset, std::uint64_t n, T* out) {
    const std::uint64_t i = blockIdx.x * static_cast<std::uint64_t>(blockDim.x) + threadIdx.x;
    const std::uint64_t first = i * Block::kPerBlock;
    if (first >= n) return;
    const std::uint64_t count = n - first < Block::kPerBlock ? n - first : Block::kPerBlock;
    fill_range<Block>(st, offset + first, count, out + first);
}

template <class T>
__global__ void elementwise_kernel(const T* x, const T* score, const T* z, std::int64_t n,
                                   RowParam<T> a, RowParam<T> s, T* out, T* out2) {
    const std::int64_t i = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x;
    if (i >= n) return;
    out[i] = perturb_value(x[i], z[i], a(0), s(0));
    out2[i] = LangevinRow<T>(s(0)).apply(x[i], score[i], z[i]);
}

template <class T>
__global__ void dsm_kernel(const T* score, const T* z, std::int64_t n, T sigma, double* loss,
                           T* grad) {
    const DsmRow<T> sigma2(sigma, true, 0.0, 1.0), weighted(sigma, false, 2.0, 1.0);
    loss[0] = sigma2.loss_scale * sigma2.run(score, z, grad, n) +
              weighted.loss_scale * weighted.run(score, z, nullptr, n) + lane_sum(score, n);
}

template <class T>
__global__ void trace_kernel(T* v, const T* av, std::int64_t n, RunningMoments* moments,
                             double* out) {
    scale_row(v, n, sphere_factor(chunked_dot(v, v, n), n));
    const double t = chunked_dot(v, av, n);
    moments->add(t);
    out[0] = ssm_term(t, t, t, true) + ssm_term(t, t, t, false) + ism_term(t, t);
}

template <class T>
__global__ void gmm_kernel(GmmParams p, GmmLevel lv, const T* x, double* work, T* score,
                           double* out) {
    gmm_level(p, 0.25, lv);
    out[0] = gmm_row(p, lv, 0.25, x, work, 1, score, out + 1);
}

template <class T>
__global__ void steps_kernel(const T* x, const T* score, const T* z, T* out, double* flags) {
    const AffineStep<T> step{T(1), T(0.5), T(0.25)};
    out[0] = step.next(step.mean(x[0], score[0]), z[0]);
    const double eps = snr_step_size(0.16, 1.0, 2.0, 3.0);
    flags[0] = mala_accepts(mala_log_ratio(-1.0, -2.0, 0.5, 0.25, eps), 0.5) ? 1.0 : 0.0;
    flags[1] = static_cast<double>(mala_uniform_element(3, 4));
}

template <class T>
void instantiate() {
    fill_kernel<NormalBlock<T>, T><<<1, 1>>>(Stream{0, 0}, 0, 0, nullptr);
    fill_kernel<UniformBlock<T>, T><<<1, 1>>>(Stream{0, 0}, 0, 0, nullptr);
    fill_kernel<RademacherBlock<T>, T><<<1, 1>>>(Stream{0, 0}, 0, 0, nullptr);
    elementwise_kernel<T><<<1, 1>>>(nullptr, nullptr, nullptr, 0, RowParam<T>{nullptr, T(1)},
                                    RowParam<T>{nullptr, T(1)}, nullptr, nullptr);
    dsm_kernel<T><<<1, 1>>>(nullptr, nullptr, 0, T(1), nullptr, nullptr);
    trace_kernel<T><<<1, 1>>>(nullptr, nullptr, 0, nullptr, nullptr);
    steps_kernel<T><<<1, 1>>>(nullptr, nullptr, nullptr, nullptr, nullptr);
    gmm_kernel<T><<<1, 1>>>(GmmParams{nullptr, nullptr, nullptr, 0, 0},
                            GmmLevel{nullptr, nullptr}, nullptr, nullptr, nullptr, nullptr);
}

template void instantiate<float>();
template void instantiate<double>();

}  // namespace cuda_check
}  // namespace scorekit
