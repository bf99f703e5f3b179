// CUDA Gaussian-mixture evaluation over the shared functors of gmm.hpp: one
// thread per sample runs the CPU's gmm_row (log-density, score, divergence)
// with its own work space (interleaved with the other samples'); the
// per-level constants are computed once for a common sigma (a thread per
// component) or per sample. The device's exp and log are not the
// host's, so results agree with the CPU to a few units in the last place (the
// arithmetic order is the CPU's), not bit for bit.
#include "cuda_backend.hpp"
#include "launch.cuh"
#include "scorekit/gmm.hpp"

namespace scorekit {
namespace cuda {

namespace {

// The common level: a thread per component.
__global__ void gmm_level_kernel(GmmParams p, double sigma2, double* level) {
    for (std::uint64_t u = first_unit(); u < static_cast<std::uint64_t>(p.K); u += unit_stride())
        gmm_level_of(p, sigma2, static_cast<std::int64_t>(u), GmmLevel{level, level + p.K});
}

template <class T>
__global__ void gmm_rows_kernel(GmmParams p, const T* x, std::int64_t B, RowParam<double> sigma,
                                double* work, double* log_p, T* score, double* div) {
    const std::int64_t K = p.K, D = p.D;
    // sample b's values are interleaved with the other samples' (element e of its
    // K + D at rows[e * B + b], of its levels at own[k * B + b]): a warp's threads
    // touch adjacent doubles
    double* shared = work;                   // 2K: the common level
    double* rows = work + 2 * K;             // B * (K + D): gmm_row's work space
    double* own = rows + B * (K + D);        // B * 2K: per-sample levels
    for (std::uint64_t u = first_unit(); u < static_cast<std::uint64_t>(B); u += unit_stride()) {
        const auto b = static_cast<std::int64_t>(u);
        const double s2 = sigma(b) * sigma(b);
        GmmLevel lv{shared, shared + K};
        if (sigma.values) {
            lv = GmmLevel{own + b, own + K * B + b, B};
            gmm_level(p, s2, lv);
        }
        log_p[b] = gmm_row(p, lv, s2, x + b * D, rows + b, B, score ? score + b * D : nullptr,
                           div ? div + b : nullptr);
    }
}

}  // namespace

template <class T>
void gmm_eval(const GmmParams& p, const T* x, std::int64_t B, RowParam<double> sigma,
              double* log_p, T* score, double* div, double* work, int device, void* stream) {
    if (B <= 0) return;
    const OnDevice on(device);
    const cudaStream_t s = as_stream(stream);
    if (!sigma.values) {
        gmm_level_kernel<<<grid_for(static_cast<std::uint64_t>(p.K)), kThreads, 0, s>>>(
            p, sigma.scalar * sigma.scalar, work);
        check(cudaGetLastError(), "mixture kernel launch");
    }
    gmm_rows_kernel<T><<<grid_for(static_cast<std::uint64_t>(B)), kThreads, 0, s>>>(
        p, x, B, sigma, work, log_p, score, div);
    check(cudaGetLastError(), "mixture kernel launch");
}

template void gmm_eval<float>(const GmmParams&, const float*, std::int64_t, RowParam<double>,
                              double*, float*, double*, double*, int, void*);
template void gmm_eval<double>(const GmmParams&, const double*, std::int64_t, RowParam<double>,
                               double*, double*, double*, double*, int, void*);

}  // namespace cuda
}  // namespace scorekit
