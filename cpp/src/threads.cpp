#include <atomic>

#include "cpu_backend.hpp"

#if defined(_OPENMP)
#include <omp.h>
#endif

namespace scorekit {
namespace cpu {

namespace {
std::atomic<int> g_threads{0};  // 0: the OpenMP default
}

void set_num_threads(int n) { g_threads.store(n < 1 ? 0 : n); }

int get_num_threads() {
    const int n = g_threads.load();
    if (n > 0) return n;
#if defined(_OPENMP)
    return omp_get_max_threads();
#else
    return 1;
#endif
}

bool openmp_enabled() {
#if defined(_OPENMP)
    return true;
#else
    return false;
#endif
}

}  // namespace cpu
}  // namespace scorekit
