#include "../src/cpu_backend.hpp"
#include "common.hpp"

namespace scorekit {
namespace bindings {

void register_langevin(py::module_& m) {
    m.def(
        "langevin_step",
        [](py::array x, py::array score, py::array step_size, std::uint64_t seed,
           std::uint64_t counter, std::uint64_t first_sample, py::array out) {
            dispatch_float(x, [&](auto tag) {
                using T = decltype(tag);
                const BatchDims bd = batch_dims(x);
                const T* px = cdata_of<T>(x);
                const T* ps = cdata_of<T>(score);
                T* po = data_of<T>(out);
                const RowParam<T> h = row_param<T>(step_size);
                py::gil_scoped_release release;
                cpu::langevin_step<T>(px, ps, bd.B, bd.D, h, stream_of(seed, counter), first_sample,
                                      po);
            });
        },
        py::arg("x"), py::arg("score"), py::arg("step_size"), py::arg("seed"), py::arg("counter"),
        py::arg("first_sample"), py::arg("out"));
}

}  // namespace bindings
}  // namespace scorekit
