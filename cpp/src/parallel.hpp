// Tiled parallel loops. Work is split into fixed tiles, so what a tile
// computes never depends on how many threads run.
#pragma once

#include <algorithm>
#include <cstdint>

#include "cpu_backend.hpp"

namespace scorekit {
namespace cpu {

// Elements per tile: the noise of one tile stays in L1.
constexpr std::int64_t kTile = 4096;
// Below this many elements a call runs on one thread.
constexpr std::int64_t kSerialBelow = 1 << 15;

// Calls f(first, count) for every tile of [0, n); `work` (elements touched,
// n by default) decides whether to use more than one thread.
template <class F>
void for_each_tile(std::int64_t n, std::int64_t tile, F&& f, std::int64_t work = -1) {
    const std::int64_t tiles = (n + tile - 1) / tile;
    const int threads = (work < 0 ? n : work) < kSerialBelow ? 1 : get_num_threads();
#if defined(_OPENMP)
#pragma omp parallel for schedule(static) num_threads(threads) if (threads > 1)
#endif
    for (std::int64_t t = 0; t < tiles; ++t) {
        const std::int64_t first = t * tile;
        f(first, std::min(tile, n - first));
    }
    (void)threads;
}

// Calls f(b0, b1, first, count) for groups of whole rows [b0, b1) whose
// elements [first, first + count) fit in one tile (rows of D <= kTile).
template <class F>
void for_each_row_group(std::int64_t B, std::int64_t D, F&& f) {
    const std::int64_t rows = std::max<std::int64_t>(1, kTile / std::max<std::int64_t>(D, 1));
    for_each_tile(B, rows, [&](std::int64_t b0, std::int64_t nb) {
        f(b0, b0 + nb, b0 * D, nb * D);
    }, B * D);
}

}  // namespace cpu
}  // namespace scorekit
