#include "../src/cpu_backend.hpp"
#include "common.hpp"

namespace scorekit {
namespace bindings {

namespace {
void fill(cpu::NoiseKind kind, py::array out, std::uint64_t seed, std::uint64_t counter,
          std::uint64_t offset) {
    dispatch_float(out, [&](auto tag) {
        using T = decltype(tag);
        T* p = data_of<T>(out);
        const auto n = static_cast<std::int64_t>(out.size());
        py::gil_scoped_release release;
        cpu::fill_noise<T>(kind, stream_of(seed, counter), offset, n, p);
    });
}
}  // namespace

void register_noise(py::module_& m) {
    const char* doc = "Fill the C-contiguous float array `out` with elements offset.. of the stream.";
    m.def("normal", [](py::array out, std::uint64_t seed, std::uint64_t counter, std::uint64_t offset) {
        fill(cpu::NoiseKind::Normal, out, seed, counter, offset);
    }, py::arg("out"), py::arg("seed"), py::arg("counter"), py::arg("offset"), doc);
    m.def("uniform", [](py::array out, std::uint64_t seed, std::uint64_t counter, std::uint64_t offset) {
        fill(cpu::NoiseKind::Uniform, out, seed, counter, offset);
    }, py::arg("out"), py::arg("seed"), py::arg("counter"), py::arg("offset"), doc);
    m.def("rademacher", [](py::array out, std::uint64_t seed, std::uint64_t counter, std::uint64_t offset) {
        fill(cpu::NoiseKind::Rademacher, out, seed, counter, offset);
    }, py::arg("out"), py::arg("seed"), py::arg("counter"), py::arg("offset"), doc);
}

}  // namespace bindings
}  // namespace scorekit
