// Tiles over the rows of a batch with their normal noise generated in L1.
#pragma once

#include <algorithm>
#include <cstdint>

#include "parallel.hpp"
#include "simd.hpp"
#include "scorekit/noise.hpp"

namespace scorekit {
namespace cpu {

// Calls seg(b, first, count, z) for each piece of row b inside a tile of the
// B x D elements, with z[0 .. count) the normals of stream elements
// [stream_first + first, stream_first + first + count).
template <class T, class Seg>
void noisy_row_segments(Stream st, std::uint64_t stream_first, std::int64_t B, std::int64_t D,
                        Seg&& seg) {
    const std::int64_t n = B * D;
    for_each_tile(n, kTile, [&](std::int64_t first, std::int64_t count) {
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
