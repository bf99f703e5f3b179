#include <pybind11/stl.h>

#include <array>

#include "../src/cpu_backend.hpp"
#include "common.hpp"
#include "scorekit/noise.hpp"

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
// The normal transform applied to given Philox words: (nb, 4) uint32 -> out.
void normal_from_words(py::array_t<std::uint32_t, py::array::c_style> words, py::array out) {
    if (words.ndim() != 2 || words.shape(1) != 4)
        throw py::value_error("words must have shape (nb, 4)");
    dispatch_float(out, [&](auto tag) {
        using T = decltype(tag);
        const std::int64_t nb = words.shape(0);
        if (out.size() != nb * NormalBlock<T>::kPerBlock)
            throw py::value_error("out must hold kPerBlock values per block");
        const std::uint32_t* w = words.data();
        T* p = data_of<T>(out);
        py::gil_scoped_release release;
        NormalBlock<T>::from_words(w, nb, p);
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
    m.def(
        "philox4x32_10",
        [](std::array<std::uint32_t, 4> ctr, std::array<std::uint32_t, 2> key) {
            const Words4 w = philox4x32_10(Words4{{ctr[0], ctr[1], ctr[2], ctr[3]}}, key[0], key[1]);
            return std::array<std::uint32_t, 4>{w.w[0], w.w[1], w.w[2], w.w[3]};
        },
        py::arg("counter"), py::arg("key"), "The Philox4x32-10 bijection on one counter (for tests).");
    m.def("normal_from_words", &normal_from_words, py::arg("words"), py::arg("out"),
          "Box-Muller transform of given Philox words (testing the transform alone).");
}

}  // namespace bindings
}  // namespace scorekit
