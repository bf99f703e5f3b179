// Gaussian mixture log-density, score and divergence, a group of rows per task.
#include <algorithm>
#include <vector>

#include "cpu_backend.hpp"
#include "parallel.hpp"

namespace scorekit {
namespace cpu {

template <class T>
void gmm_eval(const GmmParams& p, const T* x, std::int64_t B, RowParam<double> sigma,
              double* log_p, T* score, double* div) {
    const auto K = static_cast<std::size_t>(p.K);
    std::vector<double> shared(2 * K);
    const GmmLevel shared_level{shared.data(), shared.data() + K};
    if (!sigma.values) gmm_level(p, sigma.scalar * sigma.scalar, shared_level);
    // Rows per task: about 64k component-elements each (at most 256 rows), so a
    // small batch of large rows still spreads over the threads.
    const std::int64_t kRows = std::clamp<std::int64_t>((1 << 16) / std::max<std::int64_t>(p.K * p.D, 1), 1, 256);
    for_each_tile(B, kRows, [&](std::int64_t b0, std::int64_t nb) {
        std::vector<double> work(K + static_cast<std::size_t>(p.D)), own(2 * K);
        const GmmLevel own_level{own.data(), own.data() + K};
        for (std::int64_t b = b0; b < b0 + nb; ++b) {
            const double s2 = sigma(b) * sigma(b);
            if (sigma.values) gmm_level(p, s2, own_level);
            const GmmLevel& lv = sigma.values ? own_level : shared_level;
            log_p[b] = gmm_row(p, lv, s2, x + b * p.D, work.data(), 1,
                               score ? score + b * p.D : nullptr, div ? div + b : nullptr);
        }
    }, B * std::max<std::int64_t>(p.K * p.D, 1) * 8);
}

template void gmm_eval<float>(const GmmParams&, const float*, std::int64_t, RowParam<double>,
                              double*, float*, double*);
template void gmm_eval<double>(const GmmParams&, const double*, std::int64_t, RowParam<double>,
                               double*, double*, double*);

}  // namespace cpu
}  // namespace scorekit
