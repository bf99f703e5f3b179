#include "../src/cpu_backend.hpp"
#include "common.hpp"

namespace scorekit {
namespace bindings {

void register_gmm(py::module_& m) {
    m.def(
        "gmm_eval",
        [](py::array means, py::array vars, py::array log_weights, py::array x, py::array sigma,
           py::array log_p, py::object score, py::object div) {
            const GmmParams p{cdata_of<double>(means), cdata_of<double>(vars),
                              cdata_of<double>(log_weights), means.shape(0), means.shape(1)};
            dispatch_float(x, [&](auto tag) {
                using T = decltype(tag);
                const T* px = cdata_of<T>(x);
                const RowParam<double> s = row_param<double>(sigma);
                double* pl = data_of<double>(log_p);
                T* ps = optional_data<T>(score);
                double* pd = optional_data<double>(div);
                py::gil_scoped_release release;
                cpu::gmm_eval<T>(p, px, x.shape(0), s, pl, ps, pd);
            });
        },
        py::arg("means"), py::arg("vars"), py::arg("log_weights"), py::arg("x"), py::arg("sigma"),
        py::arg("log_p"), py::arg("score"), py::arg("div"),
        "Gaussian mixture (float64 parameters) at the rows of x: log p, score and divergence.");
}

}  // namespace bindings
}  // namespace scorekit
