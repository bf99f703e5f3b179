#include "simd.hpp"

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <type_traits>

#include "scorekit/noise.hpp"
#include "simd_targets.hpp"

namespace scorekit {
namespace cpu {

namespace {

Simd detect() {
#if defined(SCOREKIT_HAVE_AVX2_PATH) || defined(SCOREKIT_HAVE_AVX512_PATH)
    __builtin_cpu_init();
#endif
#if defined(SCOREKIT_HAVE_AVX512_PATH)
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq") &&
        __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl"))
        return Simd::Avx512;
#endif
#if defined(SCOREKIT_HAVE_AVX2_PATH)
    if (__builtin_cpu_supports("avx2")) return Simd::Avx2;
#endif
    return Simd::Scalar;
}

Simd clamp(Simd wanted) {
    const Simd best = simd_supported();
    return static_cast<int>(wanted) < static_cast<int>(best) ? wanted : best;
}

Simd initial() {
    const char* env = std::getenv("SCOREKIT_SIMD");
    Simd wanted = Simd::Avx512;
    if (env && !simd_from_name(env, wanted)) wanted = Simd::Avx512;  // unknown: the best
    return clamp(wanted);
}

std::atomic<int>& level() {
    static std::atomic<int> value{static_cast<int>(initial())};
    return value;
}

}  // namespace

Simd simd_supported() {
    static const Simd best = detect();
    return best;
}

Simd simd() { return static_cast<Simd>(level().load(std::memory_order_relaxed)); }

Simd set_simd(Simd wanted) {
    const Simd now = clamp(wanted);
    level().store(static_cast<int>(now));
    return now;
}

const char* simd_name(Simd s) {
    switch (s) {
        case Simd::Avx512: return "avx512";
        case Simd::Avx2: return "avx2";
        default: return "scalar";
    }
}

bool simd_from_name(const char* name, Simd& level) {
    const Simd all[] = {Simd::Scalar, Simd::Avx2, Simd::Avx512};
    for (Simd s : all) {
        if (std::strcmp(name, simd_name(s)) == 0) {
            level = s;
            return true;
        }
    }
    return false;
}

namespace {
template <class Block, class T>
[[maybe_unused]] constexpr int kind_of() {
    return std::is_same<Block, NormalBlock<T>>::value    ? 0
           : std::is_same<Block, UniformBlock<T>>::value ? 1
                                                         : 2;
}
#define SCOREKIT_FILL_ON(isa)                                                                    \
    inline void isa##_fill(int kind, const Stream& st, std::uint64_t start, std::uint64_t n,     \
                           float* out) {                                                         \
        scorekit_##isa##_fill_f32(kind, st.seed, st.counter, start, n, out);                     \
    }                                                                                            \
    inline void isa##_fill(int kind, const Stream& st, std::uint64_t start, std::uint64_t n,     \
                           double* out) {                                                        \
        scorekit_##isa##_fill_f64(kind, st.seed, st.counter, start, n, out);                     \
    }
#if defined(SCOREKIT_HAVE_AVX2_PATH)
SCOREKIT_FILL_ON(avx2)
#endif
#if defined(SCOREKIT_HAVE_AVX512_PATH)
SCOREKIT_FILL_ON(avx512)
#endif
#undef SCOREKIT_FILL_ON
}  // namespace

template <class Block, class T>
void fill_tile(const Stream& st, std::uint64_t start, std::uint64_t n, T* out) {
#if defined(SCOREKIT_HAVE_AVX512_PATH)
    if (simd() == Simd::Avx512) return avx512_fill(kind_of<Block, T>(), st, start, n, out);
#endif
#if defined(SCOREKIT_HAVE_AVX2_PATH)
    if (simd() == Simd::Avx2) return avx2_fill(kind_of<Block, T>(), st, start, n, out);
#endif
    fill_range<Block, T>(st, start, n, out);
}

template void fill_tile<NormalBlock<float>, float>(const Stream&, std::uint64_t, std::uint64_t, float*);
template void fill_tile<NormalBlock<double>, double>(const Stream&, std::uint64_t, std::uint64_t, double*);
template void fill_tile<UniformBlock<float>, float>(const Stream&, std::uint64_t, std::uint64_t, float*);
template void fill_tile<UniformBlock<double>, double>(const Stream&, std::uint64_t, std::uint64_t, double*);
template void fill_tile<RademacherBlock<float>, float>(const Stream&, std::uint64_t, std::uint64_t, float*);
template void fill_tile<RademacherBlock<double>, double>(const Stream&, std::uint64_t, std::uint64_t, double*);

}  // namespace cpu
}  // namespace scorekit
