#include "../src/cpu_backend.hpp"
#include "common.hpp"

namespace scorekit {
namespace bindings {

void register_perturb(py::module_& m) {
    m.def(
        "perturb",
        [](py::array x, py::array scale, py::array sigma, std::uint64_t seed, std::uint64_t counter,
           std::uint64_t first_sample, py::array out) {
            dispatch_float(x, [&](auto tag) {
                using T = decltype(tag);
                const BatchDims bd = batch_dims(x);
                const T* px = cdata_of<T>(x);
                T* po = data_of<T>(out);
                const RowParam<T> a = row_param<T>(scale), s = row_param<T>(sigma);
                py::gil_scoped_release release;
                cpu::perturb<T>(px, bd.B, bd.D, a, s, stream_of(seed, counter), first_sample, po);
            });
        },
        py::arg("x"), py::arg("scale"), py::arg("sigma"), py::arg("seed"), py::arg("counter"),
        py::arg("first_sample"), py::arg("out"));
}

}  // namespace bindings
}  // namespace scorekit
