// Host-to-device copies of at most a few tens of kilobytes carried in a
// kernel's parameters. The launch takes the bytes with it (the host buffer may
// go as soon as it returns) and the copy is a kernel on the stream like the
// kernels around it: no copy-engine transfer between two kernels (a staged
// cudaMemcpyAsync of a call's parameters cost the GPU 10-12 us per call on an
// H200, benchmarks/RESULTS.md), and no pinned memory or events for the host
// to manage.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "launch.cuh"

namespace scorekit {
namespace cuda {
namespace {

// A kernel's parameters: up to 32764 bytes from CUDA 12.1 (Volta and later,
// with a driver of the same age; the CUDA 13 runtime needs a newer one),
// 4096 before.
#if defined(CUDART_VERSION) && CUDART_VERSION >= 12010
constexpr std::size_t kParamBytes = 32764;
#else
constexpr std::size_t kParamBytes = 4096;
#endif
constexpr std::size_t kSmallParamBytes = 4096;  // what every driver takes

// Payload sizes in 4-byte words, smallest first: a launch passes its whole
// payload, so a few sizes keep small copies small. The largest leaves room for
// the other parameters (a pointer and a count).
constexpr std::size_t kMaxInlineWords = (kParamBytes - 64) / 4;
constexpr std::size_t inline_words(std::size_t w) {
    return w < kMaxInlineWords ? w : kMaxInlineWords;
}
constexpr std::size_t kInlineWords[] = {inline_words(512), inline_words(2048), kMaxInlineWords};
constexpr std::size_t kMaxInlineBytes = kMaxInlineWords * 4;

template <std::size_t kWords>
struct Words {
    std::uint32_t w[kWords];
};

template <std::size_t kWords>
__global__ void put_words_kernel(const __grid_constant__ Words<kWords> src, std::uint32_t* dst,
                                 unsigned n) {
    for (unsigned i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += gridDim.x * blockDim.x)
        dst[i] = src.w[i];
}

// Larger payloads than kSmallParamBytes, until a launch of one is refused as
// not supported (a driver older than the runtime's large-parameter support).
inline std::atomic<bool>& large_payloads() {
    static std::atomic<bool> ok{true};
    return ok;
}

template <std::size_t kWords>
bool put_words(const void* host, std::size_t n, std::uint32_t* dst, cudaStream_t stream) {
    static_assert(kWords * 4 + 16 <= kParamBytes, "the payload and the other parameters fit");
    constexpr bool large = kWords * 4 + 16 > kSmallParamBytes;
    if (large && !large_payloads().load(std::memory_order_relaxed)) return false;
    Words<kWords> src;
    std::memcpy(src.w, host, n * 4);
    std::memset(src.w + n, 0, (kWords - n) * 4);  // passed too: no indeterminate bytes
    const auto threads = static_cast<std::size_t>(kThreads);
    const auto blocks = static_cast<unsigned>((n + threads - 1) / threads);
    check(cudaGetLastError(), "before the host-to-device copy kernel");  // an earlier error
    put_words_kernel<kWords><<<blocks, kThreads, 0, stream>>>(src, dst, static_cast<unsigned>(n));
    const cudaError_t err = cudaGetLastError();
    if (err == cudaErrorNotSupported && large) {  // nothing enqueued: staged, now and later
        large_payloads().store(false, std::memory_order_relaxed);
        return false;
    }
    check(err, "host-to-device copy kernel launch");
    return true;
}

// Enqueues the copy of nbytes at host to dst on stream as a kernel's
// parameters. False, with nothing enqueued, when the copy is not whole 4-byte
// words to a 4-byte aligned dst, or is larger than kMaxInlineBytes (or than
// the smallest payload, 2 KB, where the driver refuses larger parameters).
inline bool put_inline(const void* host, std::size_t nbytes, void* dst, cudaStream_t stream) {
    if (nbytes == 0) return true;
    if (nbytes % 4 != 0 || reinterpret_cast<std::uintptr_t>(dst) % 4 != 0 ||
        nbytes > kMaxInlineBytes)
        return false;
    const std::size_t n = nbytes / 4;
    auto* out = static_cast<std::uint32_t*>(dst);
    if (n <= kInlineWords[0]) return put_words<kInlineWords[0]>(host, n, out, stream);
    if (n <= kInlineWords[1]) return put_words<kInlineWords[1]>(host, n, out, stream);
    return put_words<kInlineWords[2]>(host, n, out, stream);
}

}  // namespace
}  // namespace cuda
}  // namespace scorekit
