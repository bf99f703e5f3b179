// Proves, by trying every input, that the float32 noise transforms worked out
// on the bits of a Philox word give the same bits as their plain forms:
//   uniform_f32(w)                 == (float(w >> 9) + 0.5f) * 2^-23
//   sincos_2pi_of_word(w)          == sincos_2pi(uniform_f32(w))    (every m = w >> 9)
//   log_f32(x), split on the bits  == log_f32(x), split by a comparison and an
//                                     integer conversion (every float32
//                                     uniform; every exponent with a stride
//                                     through the mantissas, and every mantissa
//                                     near the split at sqrt(1/2) and at the
//                                     ends of each binade)
//   box_muller_f32(w0, w1)         == box_muller(uniform_f32(w0), uniform_f32(w1))
//   log_f64(x), split on the bits  == log_f64(x), split by a comparison with
//                                     sqrt(2) (xorshift doubles of every
//                                     exponent; every exponent with the
//                                     mantissas near the split and at the ends
//                                     of the binade)
//   KeyedStream(st).block(j)       == st.block(j)  (round keys worked out once;
//                                     xorshift seeds, counters and blocks)
// The plain forms are written out here as the transforms first defined them.
// Prints "ok" or the first differences. Built and run by tests/test_noise.py.
#include <cstdint>
#include <cstdio>
#include <initializer_list>

#include "scorekit/detmath.hpp"
#include "scorekit/noise.hpp"

namespace sk = scorekit;

namespace {

int failures = 0;

std::uint32_t bits(float x) { return sk::bits_of(x); }
float from(std::uint32_t u) { return sk::float_of(u); }

void differ(const char* what, std::uint32_t input, float got, float want) {
    if (failures++ < 10)
        std::printf("%s at 0x%08x: %.9g (0x%08x) vs %.9g (0x%08x)\n", what, input, got, bits(got),
                    want, bits(want));
}

float plain_uniform(std::uint32_t w) {
    return (static_cast<float>(w >> 9) + 0.5f) * 1.1920928955078125e-07f;
}

float plain_log(float x) {  // mantissa compared with sqrt(1/2); exponent converted
    const std::uint32_t ix = bits(x);
    const float mant = from((ix & 0x007fffffu) | 0x3f000000u);
    const bool low = mant < 0.707106781186547524f;
    const float fe = static_cast<float>((ix >> 23) & 0xffu) - 126.0f - (low ? 1.0f : 0.0f);
    const float m = (low ? mant + mant : mant) - 1.0f;
    return sk::detmath::log_f32_reduced(m, fe);
}

void uniforms_and_angles() {
    // every m = w >> 9, with low bits that must not matter
    for (std::uint32_t m = 0; m < (1u << 23); ++m)
        for (std::uint32_t low : {0u, 0x1ffu}) {
            const std::uint32_t w = (m << 9) | low;
            const float u = sk::uniform_f32(w);
            if (bits(u) != bits(plain_uniform(w))) differ("uniform_f32", w, u, plain_uniform(w));
            if (bits(sk::detmath::log_f32(u)) != bits(plain_log(u)))
                differ("log_f32 of a uniform", w, sk::detmath::log_f32(u), plain_log(u));
            float s0, c0, s1, c1;
            sk::detmath::sincos_2pi(plain_uniform(w), s0, c0);
            sk::detmath::sincos_2pi_of_word<float>(w, s1, c1);
            if (bits(s1) != bits(s0)) differ("sin of the word", w, s1, s0);
            if (bits(c1) != bits(c0)) differ("cos of the word", w, c1, c0);
        }
}

void log_at(std::uint32_t ix) {
    const float x = from(ix);
    const float got = sk::detmath::log_f32(x), want = plain_log(x);
    if (bits(got) != bits(want)) differ("log_f32", ix, got, want);
}

void logs() {  // positive normal floats
    for (std::uint32_t ix = 0x00800000u; ix < 0x7f800000u; ix += 97) log_at(ix);
    for (std::uint32_t e = 1; e < 255; ++e)  // every exponent field
        for (std::uint32_t d = 0; d < 4096; ++d) {
            const std::uint32_t base = e << 23;
            log_at(base + 0x3504f3u - 2048u + d);  // around the split
            log_at(base + d);                      // a binade's first mantissas
            log_at(base + 0x7fffffu - d);          // and its last
        }
}

void normals() {
    std::uint32_t a = 0x9e3779b9u, b = 0x7f4a7c15u;
    for (int i = 0; i < 1 << 22; ++i) {  // words of an xorshift sequence
        a ^= a << 13, a ^= a >> 17, a ^= a << 5;
        b ^= b << 13, b ^= b >> 17, b ^= b << 5;
        float zc0, zs0, zc1, zs1;
        sk::box_muller(plain_uniform(a), plain_uniform(b), zc0, zs0);
        sk::box_muller_f32<float>(a, b, zc1, zs1);
        if (bits(zc1) != bits(zc0)) differ("normal (cos)", a, zc1, zc0);
        if (bits(zs1) != bits(zs0)) differ("normal (sin)", b, zs1, zs0);
    }
}

// log_f64 as fdlibm splits its argument: the mantissa in [1, 2) compared with sqrt(2)
double plain_log64(double x) {
    const std::uint64_t ix = sk::bits_of(x);
    const double e = static_cast<double>((ix >> 52) & 0x7ffu);
    const double mant = sk::double_of((ix & 0x000fffffffffffffull) | 0x3ff0000000000000ull);
    const bool high = mant > 1.41421356237309504880;
    const double dk = e - (high ? 1022.0 : 1023.0);
    const double m = high ? mant * 0.5 : mant;
    return sk::detmath::log_f64_reduced(m - 1.0, dk);
}

void log64_at(std::uint64_t ix) {
    const double x = sk::double_of(ix);
    const double got = sk::detmath::log_f64(x), want = plain_log64(x);
    if (sk::bits_of(got) != sk::bits_of(want) && failures++ < 10)
        std::printf("log_f64 at 0x%016llx: %.17g vs %.17g\n", static_cast<unsigned long long>(ix),
                    got, want);
}

void logs64() {  // positive normal doubles
    std::uint64_t r = 0x2545f4914f6cdd1dull;
    for (int i = 0; i < 1 << 22; ++i) {
        r ^= r << 13, r ^= r >> 7, r ^= r << 17;
        const std::uint64_t field = 1 + (r >> 53) % 2046;  // 1 .. 2046
        log64_at(field << 52 | (r & 0x000fffffffffffffull));
    }
    for (std::uint64_t e = 1; e < 2047; ++e)
        for (std::uint64_t d = 0; d < 512; ++d) {
            const std::uint64_t base = e << 52;
            log64_at(base + 0x6a09e667f3bceull - 256 + d);  // around the split
            log64_at(base + d);
            log64_at(base + 0x000fffffffffffffull - d);
        }
}

void keyed_streams() {
    std::uint64_t x = 0x9e3779b97f4a7c15ull;
    auto next = [&x] { return x ^= x << 13, x ^= x >> 7, x ^= x << 17; };
    for (int i = 0; i < 1 << 16; ++i) {
        const sk::Stream st{next(), i % 4 == 0 ? 0 : next()};
        const sk::KeyedStream keyed(st);
        const std::uint64_t j = i % 3 == 0 ? static_cast<std::uint64_t>(i) : next();
        const sk::Words4 a = keyed.block(j), b = st.block(j);
        for (int k = 0; k < 4; ++k)
            if (a.w[k] != b.w[k] && failures++ < 10)
                std::printf("KeyedStream block %llu word %d: 0x%08x vs 0x%08x\n",
                            static_cast<unsigned long long>(j), k, a.w[k], b.w[k]);
    }
}

}  // namespace

int main() {
    uniforms_and_angles();
    logs();
    normals();
    logs64();
    keyed_streams();
    if (failures == 0) std::printf("ok\n");
    return failures == 0 ? 0 : 1;
}
