// Tiles over the rows of a batch with their normal noise generated in L1.
#pragma once

#include <algorithm>
#include <cstdint>

#include "parallel.hpp"
#include "simd.hpp"
#include "scorekit/noise.hpp"

namespace scorekit {
namespace cpu {

// Asks for the cache lines of [p, p + n) (for writing when `write`), so that
// they arrive while the noise of a tile is computed; no effect on results.
template <class T>
inline void prefetch_range(const T* p, std::int64_t n, bool write) {
#if defined(__GNUC__) || defined(__clang__)
    const char* c = reinterpret_cast<const char*>(p);
    const std::int64_t bytes = n * static_cast<std::int64_t>(sizeof(T));
    if (write)
        for (std::int64_t o = 0; o < bytes; o += 64) __builtin_prefetch(c + o, 1, 2);
    else
        for (std::int64_t o = 0; o < bytes; o += 64) __builtin_prefetch(c + o, 0, 2);
#else
    (void)p, (void)n, (void)write;
#endif
}

// Calls seg(b, first, count, z) for each piece of row b inside a tile of the
// B x D elements, with z[0 .. count) the normals of stream elements
// [stream_first + first, stream_first + first + count). The tile's elements of
// `in0`, `in1` (read) and `out` (written), where not null, are prefetched
// before its noise is computed.
template <class T, class Seg>
void noisy_row_segments(Stream st, std::uint64_t stream_first, std::int64_t B, std::int64_t D,
                        const T* in0, const T* in1, const T* out, Seg&& seg) {
    const std::int64_t n = B * D;
    for_each_tile(n, kTile, [&](std::int64_t first, std::int64_t count) {
        if (in0) prefetch_range(in0 + first, count, false);
        if (in1) prefetch_range(in1 + first, count, false);
        if (out) prefetch_range(out + first, count, true);
        alignas(64) T z[kTile];
        fill_tile<NormalBlock<T>>(st, stream_first + static_cast<std::uint64_t>(first),
                                   static_cast<std::uint64_t>(count), z);
        const std::int64_t end = first + count;
        std::int64_t b = first / D;
        for (std::int64_t i = first; i < end; ++b) {
            const std::int64_t stop = std::min(end, (b + 1) * D);
            seg(b, i, stop - i, z + (i - first));
            i = stop;
        }
    });
}

}  // namespace cpu
}  // namespace scorekit
