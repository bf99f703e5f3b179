#include <string>

#include "../src/cpu_backend.hpp"
#include "common.hpp"

#ifndef SCOREKIT_VERSION
#define SCOREKIT_VERSION "0.0.0"
#endif

namespace scorekit {
namespace bindings {

namespace {
std::string compiler_name() {
#if defined(__clang__)
    return std::string("clang ") + __clang_version__;
#elif defined(__GNUC__)
    return std::string("gcc ") + __VERSION__;
#elif defined(_MSC_VER)
    return "msvc " + std::to_string(_MSC_VER);
#else
    return "unknown";
#endif
}

std::string simd_level() {
#if defined(__AVX512F__)
    return "scalar (compiled for avx512f)";
#elif defined(__AVX2__)
    return "scalar (compiled for avx2)";
#elif defined(__x86_64__) || defined(_M_X64)
    return "scalar (x86-64 baseline)";
#elif defined(__aarch64__)
    return "scalar (aarch64)";
#else
    return "scalar";
#endif
}
}  // namespace

void register_info(py::module_& m) {
    m.def("set_num_threads", &cpu::set_num_threads, py::arg("n"));
    m.def("get_num_threads", &cpu::get_num_threads);
    m.def("build_info", []() {
        py::dict d;
        d["version"] = SCOREKIT_VERSION;
        d["compiler"] = compiler_name();
        d["simd"] = simd_level();
        d["openmp"] = cpu::openmp_enabled();
        d["num_threads"] = cpu::get_num_threads();
#if defined(SCOREKIT_WITH_CUDA)
        d["cuda_compiled"] = true;
#else
        d["cuda_compiled"] = false;
#endif
        d["gpu_available"] = false;
        return d;
    });
}

}  // namespace bindings
}  // namespace scorekit
