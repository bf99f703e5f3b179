// perturb and langevin_step: one pass, noise generated per tile in L1.
#include <algorithm>

#include "cpu_backend.hpp"
#include "parallel.hpp"
#include "noisy_rows.hpp"

namespace scorekit {
namespace cpu {


template <class T>
void perturb(const T* x, std::int64_t B, std::int64_t D, RowParam<T> scale, RowParam<T> sigma,
             Stream st, std::uint64_t first_sample, T* out) {
    noisy_row_segments<T>(st, first_sample * static_cast<std::uint64_t>(D), B, D,
                          [&](std::int64_t b, std::int64_t i, std::int64_t n, const T* z) {
        const T a = scale(b), s = sigma(b);
        const T* xi = x + i;
        T* oi = out + i;
        for (std::int64_t k = 0; k < n; ++k) oi[k] = perturb_value(xi[k], z[k], a, s);
    });
}

template <class T>
void langevin_step(const T* x, const T* score, std::int64_t B, std::int64_t D,
                   RowParam<T> step_size, Stream st, std::uint64_t first_sample, T* out) {
    noisy_row_segments<T>(st, first_sample * static_cast<std::uint64_t>(D), B, D,
                          [&](std::int64_t b, std::int64_t i, std::int64_t n, const T* z) {
        const LangevinRow<T> row(step_size(b));
        const T* xi = x + i;
        const T* si = score + i;
        T* oi = out + i;
        for (std::int64_t k = 0; k < n; ++k) oi[k] = row.apply(xi[k], si[k], z[k]);
    });
}

template void perturb<float>(const float*, std::int64_t, std::int64_t, RowParam<float>,
                             RowParam<float>, Stream, std::uint64_t, float*);
template void perturb<double>(const double*, std::int64_t, std::int64_t, RowParam<double>,
                              RowParam<double>, Stream, std::uint64_t, double*);
template void langevin_step<float>(const float*, const float*, std::int64_t, std::int64_t,
                                   RowParam<float>, Stream, std::uint64_t, float*);
template void langevin_step<double>(const double*, const double*, std::int64_t, std::int64_t,
                                    RowParam<double>, Stream, std::uint64_t, double*);

}  // namespace cpu
}  // namespace scorekit
