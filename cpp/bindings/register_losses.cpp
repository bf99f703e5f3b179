#include "../src/cpu_backend.hpp"
#include "common.hpp"

namespace scorekit {
namespace bindings {

void register_losses(py::module_& m) {
    m.def(
        "dsm_loss",
        [](py::array score, py::object noise, py::array sigma, py::object weight,
           double batch_scale, std::uint64_t seed, std::uint64_t counter,
           std::uint64_t first_sample, py::array row_loss, py::object grad) {
            dispatch_float(score, [&](auto tag) {
                using T = decltype(tag);
                const BatchDims bd = batch_dims(score);
                const T* ps = cdata_of<T>(score);
                const T* pz = optional_cdata<T>(noise);
                const bool sigma2 = weight.is_none();
                const RowParam<T> w =
                    sigma2 ? RowParam<T>{nullptr, T(1)} : row_param<T>(weight.cast<py::array>());
                const RowParam<T> s = row_param<T>(sigma);
                double* pl = data_of<double>(row_loss);
                T* pg = optional_data<T>(grad);
                py::gil_scoped_release release;
                cpu::dsm_loss<T>(ps, pz, bd.B, bd.D, s, sigma2, w, batch_scale,
                                 stream_of(seed, counter), first_sample, pl, pg);
            });
        },
        py::arg("score"), py::arg("noise"), py::arg("sigma"), py::arg("weight"),
        py::arg("batch_scale"), py::arg("seed"), py::arg("counter"), py::arg("first_sample"),
        py::arg("row_loss"),
        py::arg("grad"),
        "Per-sample DSM losses into row_loss (float64); weight None means sigma^2.");
    m.def(
        "sum",
        [](py::array v) {
            const double* p = cdata_of<double>(v);
            const auto n = static_cast<std::int64_t>(v.size());
            py::gil_scoped_release release;
            return cpu::sum(p, n);
        },
        py::arg("values"), "Deterministic sum of a contiguous float64 array.");
}

}  // namespace bindings
}  // namespace scorekit
