// Instruction-set dispatch for the CPU backend. Every level produces the same
// bits as the scalar functors; only the speed differs.
#pragma once

#include <cstdint>

#include "scorekit/philox.hpp"

namespace scorekit {
namespace cpu {

enum class Simd : int { Scalar = 0, Avx2 = 1, Avx512 = 2 };

// The level in use: the best this CPU supports, lowered by the environment
// variable SCOREKIT_SIMD=scalar|avx2|avx512 (read once) or by set_simd.
Simd simd();
const char* simd_name(Simd level);
// The level called `name` ("scalar", "avx2", "avx512"); false if there is none.
bool simd_from_name(const char* name, Simd& level);
// Best level this build and CPU support.
Simd simd_supported();
// Uses `level` if supported (else the best supported below it); returns the level now in use.
Simd set_simd(Simd level);

// fill_range<Block> on the active level.
template <class Block, class T>
void fill_tile(const Stream& st, std::uint64_t start, std::uint64_t n, T* out);

}  // namespace cpu
}  // namespace scorekit
