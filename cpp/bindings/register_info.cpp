#include <string>

#include "../src/cpu_backend.hpp"
#include "../src/simd.hpp"
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

std::string target_arch() {
#if defined(__x86_64__) || defined(_M_X64)
    return "x86-64";
#elif defined(__aarch64__)
    return "aarch64";
#else
    return "other";
#endif
}

cpu::Simd simd_from_name(const std::string& name) {
    cpu::Simd level;
    if (cpu::simd_from_name(name.c_str(), level)) return level;
    throw py::value_error("simd level must be 'scalar', 'avx2' or 'avx512', got '" + name + "'");
}
}  // namespace

void register_info(py::module_& m) {
    m.def("set_num_threads", &cpu::set_num_threads, py::arg("n"));
    m.def("get_num_threads", &cpu::get_num_threads);
    m.def(
        "set_simd",
        [](const std::string& name) { return std::string(cpu::simd_name(cpu::set_simd(simd_from_name(name)))); },
        py::arg("level"), "Use this instruction-set level (or the best supported below it); returns the one in use.");
    m.def("build_info", []() {
        py::dict d;
        d["version"] = SCOREKIT_VERSION;
        d["compiler"] = compiler_name();
        d["arch"] = target_arch();
        d["simd"] = cpu::simd_name(cpu::simd());
        d["simd_supported"] = cpu::simd_name(cpu::simd_supported());
        d["openmp"] = cpu::openmp_enabled();
        d["num_threads"] = cpu::get_num_threads();
#if defined(SCOREKIT_WITH_CUDA)
        d["cuda_compiled"] = true;
#else
        d["cuda_compiled"] = false;
#endif
        return d;
    });
}

}  // namespace bindings
}  // namespace scorekit
