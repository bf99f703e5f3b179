#include "cpu_backend.hpp"
#include "parallel.hpp"
#include "simd.hpp"
#include "scorekit/noise.hpp"

namespace scorekit {
namespace cpu {

namespace {
template <class Block, class T>
void fill(Stream st, std::uint64_t offset, std::int64_t n, T* out) {
    for_each_tile(n, kTile, [&](std::int64_t first, std::int64_t count) {
        fill_tile<Block>(st, offset + static_cast<std::uint64_t>(first),
                          static_cast<std::uint64_t>(count), out + first);
    });
}
}  // namespace

template <class T>
void fill_noise(NoiseKind kind, Stream st, std::uint64_t offset, std::int64_t n, T* out) {
    switch (kind) {
        case NoiseKind::Normal: fill<NormalBlock<T>>(st, offset, n, out); break;
        case NoiseKind::Uniform: fill<UniformBlock<T>>(st, offset, n, out); break;
        case NoiseKind::Rademacher: fill<RademacherBlock<T>>(st, offset, n, out); break;
    }
}

template void fill_noise<float>(NoiseKind, Stream, std::uint64_t, std::int64_t, float*);
template void fill_noise<double>(NoiseKind, Stream, std::uint64_t, std::int64_t, double*);

}  // namespace cpu
}  // namespace scorekit
