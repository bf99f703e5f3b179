// Host and device helpers shared by the CUDA launchers: error checks, the
// device guard, stream handles and the grid-stride unit loop.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>
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

// f(i, value) for the stream values of elements [first, first + n), i < n; thread
// `tid` of `nthreads` takes whole Philox blocks (unit tid, tid + nthreads, ...).
template <class Block, class T, class F>
__device__ SCOREKIT_INLINE void for_stream_values(const Stream& st, std::uint64_t first,
                                                  std::int64_t n, unsigned tid, unsigned nthreads,
                                                  F&& f) {
    const BlockUnits bu{first, static_cast<std::uint64_t>(n), Block::kPerBlock};
    for (std::uint64_t u = tid; u < bu.units(); u += nthreads) {
        T v[Block::kPerBlock];
        make_block<Block>(st, bu.block(u), v);
        const std::uint64_t b = bu.begin(u), e = bu.end(u), s = bu.skip(u);
        for (std::uint64_t i = b; i < e; ++i)
            f(static_cast<std::int64_t>(i), v[s + (i - b)]);
    }
}

// out[i] = scale * in[i], i < n (the gradients that are a multiple of an input).
template <class T>
__global__ void scale_kernel(const T* in, std::int64_t n, T scale, T* out) {
    for (std::uint64_t i = first_unit(); i < static_cast<std::uint64_t>(n); i += unit_stride())
        out[i] = scale * in[i];
}

}  // namespace
}  // namespace cuda
}  // namespace scorekit
