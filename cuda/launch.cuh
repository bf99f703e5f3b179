// Host and device helpers shared by the CUDA launchers: error checks, the
// device guard, stream handles and the grid-stride unit loop.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>
#include <initializer_list>
#include <stdexcept>
#include <string>

#include "grid.hpp"
#include "scorekit/noise.hpp"

namespace scorekit {
namespace cuda {
namespace {

inline void check(cudaError_t err, const char* what) {
    if (err != cudaSuccess)
        throw std::runtime_error(std::string("scorekit CUDA: ") + what + ": " +
                                 cudaGetErrorString(err));
}

// Makes `device` current for a call and restores the previous device.
class OnDevice {
  public:
    explicit OnDevice(int device) {
        check(cudaGetDevice(&previous_), "cudaGetDevice");
        changed_ = device != previous_;
        if (changed_) check(cudaSetDevice(device), "cudaSetDevice");
    }
    ~OnDevice() {
        if (changed_) cudaSetDevice(previous_);
    }
    OnDevice(const OnDevice&) = delete;
    OnDevice& operator=(const OnDevice&) = delete;

  private:
    int previous_ = 0;
    bool changed_ = false;
};

inline cudaStream_t as_stream(void* s) { return static_cast<cudaStream_t>(s); }

inline unsigned grid_for(std::uint64_t units) { return static_cast<unsigned>(grid_blocks(units)); }

// Grid-stride loop over units of work: for (u = first_unit(); u < n; u += unit_stride()).
__device__ SCOREKIT_INLINE std::uint64_t first_unit() {
    return blockIdx.x * static_cast<std::uint64_t>(blockDim.x) + threadIdx.x;
}
__device__ SCOREKIT_INLINE std::uint64_t unit_stride() {
    return static_cast<std::uint64_t>(gridDim.x) * blockDim.x;
}

// Units in tiles: a block takes kThreads * kTileUnits consecutive units at a
// time, thread t units t, t + kThreads, ... of the tile (neighbouring threads,
// neighbouring units), so the units of one thread lie close together and come
// in increasing order (its rows change rarely). tiled_grid(units) blocks.
constexpr int kTileUnits = 8;

inline unsigned tiled_grid(std::uint64_t units) {
    return grid_for((units + kTileUnits - 1) / kTileUnits);
}

template <class F>
__device__ SCOREKIT_INLINE void for_tiled_units(std::uint64_t units, F&& f) {
    const std::uint64_t tile = static_cast<std::uint64_t>(blockDim.x) * kTileUnits;
    for (std::uint64_t t0 = blockIdx.x * tile; t0 < units; t0 += gridDim.x * tile) {
        std::uint64_t u = t0 + threadIdx.x;  // unit j of the tile: t0 + j * blockDim.x + tid
        for (int j = 0; j < kTileUnits; ++j, u += blockDim.x) {
            if (u >= units) return;  // the thread's later units are larger still
            f(u);
        }
    }
}

// f(i, v[k]) for the values of unit u that fall inside the output (a loop of
// constant trip count: v stays in registers).
template <int K, class T, class F>
__device__ SCOREKIT_INLINE void for_unit_values(const BlockUnits<K>& bu, std::uint64_t u,
                                                const T (&v)[K], F&& f) {
#pragma unroll
    for (int k = 0; k < K; ++k) {
        const std::uint64_t i = bu.element(u, k);
        if (i < bu.n) f(i, v[k]);
    }
}

// f(i, value) for the stream values of elements [first, first + n), i < n; thread
// `tid` of `nthreads` takes whole Philox blocks (unit tid, tid + nthreads, ...).
template <class Block, class T, class F>
__device__ SCOREKIT_INLINE void for_stream_values(const Stream& st, std::uint64_t first,
                                                  std::int64_t n, unsigned tid, unsigned nthreads,
                                                  F&& f) {
    constexpr int K = Block::kPerBlock;
    const auto bu = BlockUnits<K>::of(first, static_cast<std::uint64_t>(n));
    for (std::uint64_t u = tid; u < bu.units(); u += nthreads) {
        T v[K];
        make_block<Block>(st, bu.block(u), v);
        for_unit_values(bu, u, v, [&](std::uint64_t i, T x) { f(static_cast<std::int64_t>(i), x); });
    }
}

// 16-byte loads and stores of K consecutive values (K * sizeof(T) a multiple of
// 16, p 16-byte aligned): one vector access instead of K scalar ones. On the
// device the stores are written out as one st.global.v4 / v2 each (p points
// into global memory: every caller stores to a device array): a plain store
// of a float4 came out as four scalar stores in dsm_loss's value loop. Under
// the host emulation (tests/native/cuda_emulation) a misaligned access aborts.
__device__ SCOREKIT_INLINE void load16(const float* p, float* v) {
#if defined(SCOREKIT_CUDA_EMULATED)
    emu::vector_access(p, "load");
#endif
    const float4 w = *reinterpret_cast<const float4*>(p);
    v[0] = w.x, v[1] = w.y, v[2] = w.z, v[3] = w.w;
}
__device__ SCOREKIT_INLINE void load16(const double* p, double* v) {
#if defined(SCOREKIT_CUDA_EMULATED)
    emu::vector_access(p, "load");
#endif
    const double2 w = *reinterpret_cast<const double2*>(p);
    v[0] = w.x, v[1] = w.y;
}
__device__ SCOREKIT_INLINE void store16(float* p, const float* v) {
#if defined(__CUDA_ARCH__)
    asm("st.global.v4.f32 [%0], {%1, %2, %3, %4};" ::"l"(__cvta_generic_to_global(p)),
        "f"(v[0]), "f"(v[1]), "f"(v[2]), "f"(v[3])
        : "memory");
#else
#if defined(SCOREKIT_CUDA_EMULATED)
    emu::vector_access(p, "store");
#endif
    *reinterpret_cast<float4*>(p) = make_float4(v[0], v[1], v[2], v[3]);
#endif
}
__device__ SCOREKIT_INLINE void store16(double* p, const double* v) {
#if defined(__CUDA_ARCH__)
    asm("st.global.v2.f64 [%0], {%1, %2};" ::"l"(__cvta_generic_to_global(p)), "d"(v[0]),
        "d"(v[1])
        : "memory");
#else
#if defined(SCOREKIT_CUDA_EMULATED)
    emu::vector_access(p, "store");
#endif
    *reinterpret_cast<double2*>(p) = make_double2(v[0], v[1]);
#endif
}

template <int K, class T>
__device__ SCOREKIT_INLINE void load_vec(const T* p, T (&v)[K]) {
    constexpr int per = 16 / static_cast<int>(sizeof(T));
    static_assert(K % per == 0, "K values are whole 16-byte words");
#pragma unroll
    for (int c = 0; c < K / per; ++c) load16(p + c * per, v + c * per);
}

template <int K, class T>
__device__ SCOREKIT_INLINE void store_vec(T* p, const T (&v)[K]) {
    constexpr int per = 16 / static_cast<int>(sizeof(T));
    static_assert(K % per == 0, "K values are whole 16-byte words");
#pragma unroll
    for (int c = 0; c < K / per; ++c) store16(p + c * per, v + c * per);
}

// The elements of one stream block's K values within a run of n elements:
// value k is element i0 + k, inside the run when in(k). kWhole: the run is
// made of whole blocks, 16-byte aligned in every array it touches, so every
// value is inside and the accesses go a 16-byte word at a time.
template <int K, bool kWhole>
struct BlockSpan {
    static constexpr int kValues = K;
    static constexpr bool kAll = kWhole;
    std::int64_t i0;
    std::int64_t n;
    __device__ SCOREKIT_INLINE bool in(int k) const {
        return kWhole || static_cast<std::uint64_t>(i0 + k) < static_cast<std::uint64_t>(n);
    }
};

// v[k] = p[i0 + k] for the values of `at` inside its run (0 outside).
template <class Span, class T>
__device__ SCOREKIT_INLINE void load_span(const T* p, const Span& at, T (&v)[Span::kValues]) {
    if constexpr (Span::kAll) {
        load_vec(p + at.i0, v);
    } else {
#pragma unroll
        for (int k = 0; k < Span::kValues; ++k) v[k] = at.in(k) ? p[at.i0 + k] : T(0);
    }
}

// p[i0 + k] = v[k] for the values of `at` inside its run.
template <class Span, class T>
__device__ SCOREKIT_INLINE void store_span(T* p, const Span& at, const T (&v)[Span::kValues]) {
    if constexpr (Span::kAll) {
        store_vec(p + at.i0, v);
    } else {
#pragma unroll
        for (int k = 0; k < Span::kValues; ++k)
            if (at.in(k)) p[at.i0 + k] = v[k];
    }
}

// The stream values of elements [first, first + n) a block at a time (n below
// 2^32: a reduction's run), thread `tid` of `nthreads` taking blocks tid,
// tid + nthreads, ...: for each, in = load(at), then the block's K values v (a
// T[K]) are made, then f(at, v, in), with `at` the block's BlockSpan<K, kWhole>
// (value k is element at.i0 + k of the run). The operands are read before the
// values are made, so their loads wait while the values are worked out (read
// after them, next to f's stores, each block would wait for its loads in
// turn). kWhole: first starts a block, n is a multiple of K and the arrays f
// and load reach through `at` are 16-byte aligned.
template <class Block, bool kWhole, class T, class S, class L, class F>
__device__ SCOREKIT_INLINE void for_stream_spans(const S& st, std::uint64_t first,
                                                 std::int64_t n, unsigned tid, unsigned nthreads,
                                                 L&& load, F&& f) {
    constexpr int K = Block::kPerBlock;
    const auto bu = BlockUnits<K>::of(first, static_cast<std::uint64_t>(n));
    const auto units = static_cast<unsigned>(bu.units());
    for (unsigned u = tid; u < units; u += nthreads) {
        const BlockSpan<K, kWhole> at{static_cast<std::int64_t>(bu.element(u, 0)), n};
        const auto in = load(at);
        T v[K];
        make_block<Block>(st, bu.block(u), v);
        f(at, v, in);
    }
}

// K values of T held together (a slot of for_batched).
template <class T, int K>
struct Vals {
    T v[K];
};

// Items tid, tid + nthreads, ... (< count) of one thread, four at a time:
// load(item, slot) for each item of a batch, then use(item, slot) for each.
// The compiler may not move a load past a store that could alias it, so a
// loop that loads, then stores, then loads again waits for each load in turn;
// here a batch's loads are all in flight at once. I: unsigned for a tile's
// items, std::uint64_t for a grid-stride loop (tid first_unit(), nthreads
// unit_stride()).
template <class Slot, class I, class L, class U>
__device__ SCOREKIT_INLINE void for_batched(I count, I tid, I nthreads, L&& load, U&& use) {
    constexpr int kBatch = 4;
    for (I first = tid; first < count; first += kBatch * nthreads) {
        Slot slot[kBatch];
        if (first + (kBatch - 1) * nthreads < count) {  // a whole batch: no checks
#pragma unroll
            for (int b = 0; b < kBatch; ++b) load(first + b * nthreads, slot[b]);
#pragma unroll
            for (int b = 0; b < kBatch; ++b) use(first + b * nthreads, slot[b]);
            continue;
        }
#pragma unroll
        for (int b = 0; b < kBatch; ++b) {
            const I item = first + b * nthreads;
            if (item < count) load(item, slot[b]);
        }
#pragma unroll
        for (int b = 0; b < kBatch; ++b) {
            const I item = first + b * nthreads;
            if (item < count) use(item, slot[b]);
        }
    }
}

// Whether p is 16-byte aligned (null counts as aligned: an absent output).
inline bool aligned16(const void* p) { return reinterpret_cast<std::uintptr_t>(p) % 16 == 0; }

// Whether arrays of rows of D elements go by whole words of K values with
// 16-byte access: D a multiple of K (every row starts a word) and every array
// 16-byte aligned (null: absent).
inline bool whole_words(std::int64_t D, std::int64_t K, std::initializer_list<const void*> arrays) {
    bool ok = D % K == 0;
    for (const void* p : arrays) ok = ok && aligned16(p);
    return ok;
}

}  // namespace
}  // namespace cuda
}  // namespace scorekit
