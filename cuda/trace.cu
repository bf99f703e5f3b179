// CUDA pieces of trace and diagonal estimation over the shared functors: probe
// rows drawn straight into a round's (B, m, D) block (probes k0 .. k0 + m of a
// layout of K per sample), the samples t = v . (A v) reduced in the CPU's order
// (row_reduce.cuh) and added to each sample's running moments in probe order,
// and the elementwise moments of v * (A v): the CPU backend's bits.
#include "cuda_backend.hpp"
#include "row_reduce.cuh"
#include "scorekit/trace.hpp"

namespace scorekit {
namespace cuda {

namespace {

// Out row r = b * m + i is stream row row0 + b * K + i; unit u covers Philox block
// u % per_row of row u / per_row (per_row bounds the blocks of any row).
template <class Block, class T>
__global__ void probe_rows_kernel(Stream st, std::int64_t rows, RowOf of_m, std::int64_t D,
                                  std::int64_t K, std::uint64_t row0, RowOf of_row, T* out) {
    const std::uint64_t units = static_cast<std::uint64_t>(rows * of_row.D);
    for (std::uint64_t u = first_unit(); u < units; u += unit_stride()) {
        const std::int64_t r = of_row(static_cast<std::int64_t>(u));
        const auto q = static_cast<std::uint64_t>(static_cast<std::int64_t>(u) - r * of_row.D);
        const std::int64_t b = of_m(r), i = r - b * of_m.D;
        const auto bu = BlockUnits<Block::kPerBlock>::of(
            (row0 + static_cast<std::uint64_t>(b * K + i)) * static_cast<std::uint64_t>(D),
            static_cast<std::uint64_t>(D));
        if (q >= bu.units()) continue;
        T v[Block::kPerBlock];
        make_block<Block>(st, bu.block(q), v);
        T* row = out + r * D;
        for_unit_values(bu, q, v, [&](std::uint64_t j, T x) { row[j] = x; });
    }
}

__global__ void add_moments_kernel(const double* t, std::int64_t B, std::int64_t m,
                                   const std::uint8_t* active, RunningMoments* moments,
                                   std::int64_t first, std::int64_t* first_bad) {
    for (std::uint64_t u = first_unit(); u < static_cast<std::uint64_t>(B); u += unit_stride()) {
        const auto b = static_cast<std::int64_t>(u);
        if (active && !active[b]) continue;
        add_round(moments[b], t + b * m, m, first, first_bad ? first_bad + b : nullptr);
    }
}

template <class T>
__global__ void diagonal_moments_kernel(const T* V, const T* AV, std::int64_t B, std::int64_t m,
                                        std::int64_t D, double count, double* mean, double* m2) {
    for (std::uint64_t u = first_unit(); u < static_cast<std::uint64_t>(B * D);
         u += unit_stride()) {
        diagonal_element(V, AV, m, D, static_cast<std::int64_t>(u), count, mean, m2);
    }
}

// per_row bounds the stream blocks any row of D elements touches.
template <class Block, class T>
void launch_probe_rows(Stream st, std::int64_t rows, std::int64_t m, std::int64_t D,
                       std::int64_t K, std::uint64_t row0, T* out, cudaStream_t s) {
    const std::int64_t per_row = D / Block::kPerBlock + 2;
    probe_rows_kernel<Block, T><<<grid_for(static_cast<std::uint64_t>(rows * per_row)), kThreads,
                                  0, s>>>(st, rows, RowOf::of(m), D, K, row0, RowOf::of(per_row),
                                          out);
}

}  // namespace

template <class T>
void probe_rows(ProbeKind kind, Stream st, std::int64_t B, std::int64_t m, std::int64_t D,
                std::int64_t K, std::uint64_t row0, T* out, double* work, int device,
                void* stream) {
    const std::int64_t rows = B * m;
    if (rows <= 0 || D <= 0) return;
    const OnDevice on(device);
    const cudaStream_t s = as_stream(stream);
    if (kind == ProbeKind::Rademacher)
        launch_probe_rows<RademacherBlock<T>>(st, rows, m, D, K, row0, out, s);
    else
        launch_probe_rows<NormalBlock<T>>(st, rows, m, D, K, row0, out, s);
    check(cudaGetLastError(), "probe kernel launch");
    if (kind == ProbeKind::Sphere) sphere_rows<T>(out, rows, D, work, device, stream);
}

template <class T>
void trace_moments(const T* V, const T* AV, std::int64_t B, std::int64_t m, std::int64_t D,
                   const std::uint8_t* active, double* t, RunningMoments* moments,
                   std::int64_t first, std::int64_t* first_bad, double* work, int device,
                   void* stream) {
    if (B <= 0 || m <= 0) return;
    const OnDevice on(device);
    const cudaStream_t s = as_stream(stream);
    row_reduce(B * m, D, kReduceChunk, DotOp<T>{V, AV, D}, StoreFin{t}, work, s,
               "trace kernel launch");
    add_moments_kernel<<<grid_for(static_cast<std::uint64_t>(B)), kThreads, 0, s>>>(
        t, B, m, active, moments, first, first_bad);
    check(cudaGetLastError(), "trace kernel launch");
}

template <class T>
void diagonal_moments(const T* V, const T* AV, std::int64_t B, std::int64_t m, std::int64_t D,
                      double count, double* mean, double* m2, int device, void* stream) {
    if (B <= 0 || D <= 0) return;
    const OnDevice on(device);
    diagonal_moments_kernel<T><<<grid_for(static_cast<std::uint64_t>(B * D)), kThreads, 0,
                                 as_stream(stream)>>>(V, AV, B, m, D, count, mean, m2);
    check(cudaGetLastError(), "diagonal kernel launch");
}

#define SCOREKIT_CUDA_INSTANTIATE(T)                                                              \
    template void probe_rows<T>(ProbeKind, Stream, std::int64_t, std::int64_t, std::int64_t,      \
                                std::int64_t, std::uint64_t, T*, double*, int, void*);            \
    template void trace_moments<T>(const T*, const T*, std::int64_t, std::int64_t, std::int64_t,  \
                                   const std::uint8_t*, double*, RunningMoments*, std::int64_t,   \
                                   std::int64_t*, double*, int, void*);                           \
    template void diagonal_moments<T>(const T*, const T*, std::int64_t, std::int64_t,             \
                                      std::int64_t, double, double*, double*, int, void*);
SCOREKIT_CUDA_INSTANTIATE(float)
SCOREKIT_CUDA_INSTANTIATE(double)
#undef SCOREKIT_CUDA_INSTANTIATE

}  // namespace cuda
}  // namespace scorekit
