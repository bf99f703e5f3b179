// Host-to-device copies of small host arrays (per-sample parameters): enqueued
// on the caller's stream straight from pageable memory. The runtime stages
// such a copy before it returns (no device synchronisation), so the host
// buffer may go as soon as the call returns.
#include "cuda_backend.hpp"
#include "launch.cuh"

namespace scorekit {
namespace cuda {

void upload(const void* host, std::size_t nbytes, void* dst, int device, void* stream) {
    if (nbytes == 0) return;
    const OnDevice on(device);
    check(cudaMemcpyAsync(dst, host, nbytes, cudaMemcpyHostToDevice, as_stream(stream)),
          "host-to-device copy");
}

}  // namespace cuda
}  // namespace scorekit
