#include "../src/cpu_backend.hpp"
#include "common.hpp"

namespace scorekit {
namespace bindings {

void register_steps(py::module_& m) {
    m.def(
        "affine_step",
        [](py::array x, py::array score, py::array a, py::array c, py::array g, std::uint64_t seed,
           std::uint64_t counter, std::uint64_t first_sample, py::array out, py::object out_mean) {
            dispatch_float(x, [&](auto tag) {
                using T = decltype(tag);
                const BatchDims bd = batch_dims(x);
                const T* px = cdata_of<T>(x);
                const T* ps = cdata_of<T>(score);
                const RowParam<T> pa = row_param<T>(a), pc = row_param<T>(c), pg = row_param<T>(g);
                T* po = data_of<T>(out);
                T* pm = optional_data<T>(out_mean);
                py::gil_scoped_release release;
                cpu::affine_step<T>(px, ps, bd.B, bd.D, pa, pc, pg, stream_of(seed, counter),
                                    first_sample, po, pm);
            });
        },
        py::arg("x"), py::arg("score"), py::arg("a"), py::arg("c"), py::arg("g"), py::arg("seed"),
        py::arg("counter"), py::arg("first_sample"), py::arg("out"), py::arg("out_mean"),
        "out_mean = a x + c score; out = out_mean + g z.");
    m.def(
        "langevin_corrector",
        [](py::array x, py::array score, double snr, py::array alpha, bool per_sample,
           std::uint64_t seed, std::uint64_t counter, std::uint64_t first_sample, py::array out,
           py::object out_mean, py::array step) {
            dispatch_float(x, [&](auto tag) {
                using T = decltype(tag);
                const BatchDims bd = batch_dims(x);
                const T* px = cdata_of<T>(x);
                const T* ps = cdata_of<T>(score);
                const RowParam<T> pa = row_param<T>(alpha);
                T* po = data_of<T>(out);
                T* pm = optional_data<T>(out_mean);
                double* pst = data_of<double>(step);
                py::gil_scoped_release release;
                cpu::langevin_corrector<T>(px, ps, bd.B, bd.D, snr, pa, per_sample,
                                           stream_of(seed, counter), first_sample, po, pm, pst);
            });
        },
        py::arg("x"), py::arg("score"), py::arg("snr"), py::arg("alpha"), py::arg("per_sample"),
        py::arg("seed"), py::arg("counter"), py::arg("first_sample"), py::arg("out"),
        py::arg("out_mean"), py::arg("step"), "Langevin corrector with the SNR step size.");
    m.def(
        "mala_accept",
        [](py::array x, py::array score_x, py::array logp_x, py::array x_prop,
           py::array score_prop, py::array logp_prop, py::array h, std::uint64_t seed,
           std::uint64_t counter, std::uint64_t first_sample, py::array x_out,
           py::array score_out, py::array logp_out, py::array accepted) {
            dispatch_float(x, [&](auto tag) {
                using T = decltype(tag);
                const BatchDims bd = batch_dims(x);
                const T* px = cdata_of<T>(x);
                const T* psx = cdata_of<T>(score_x);
                const double* plx = cdata_of<double>(logp_x);
                const T* pp = cdata_of<T>(x_prop);
                const T* psp = cdata_of<T>(score_prop);
                const double* plp = cdata_of<double>(logp_prop);
                const RowParam<T> ph = row_param<T>(h);
                T* pxo = data_of<T>(x_out);
                T* pso = data_of<T>(score_out);
                double* plo = data_of<double>(logp_out);
                auto* pacc = data_of<std::uint8_t>(accepted);
                py::gil_scoped_release release;
                cpu::mala_accept<T>(px, psx, plx, pp, psp, plp, bd.B, bd.D, ph,
                                    stream_of(seed, counter), first_sample, pxo, pso, plo, pacc);
            });
        },
        py::arg("x"), py::arg("score_x"), py::arg("logp_x"), py::arg("x_prop"),
        py::arg("score_prop"), py::arg("logp_prop"), py::arg("h"), py::arg("seed"),
        py::arg("counter"), py::arg("first_sample"), py::arg("x_out"), py::arg("score_out"),
        py::arg("logp_out"), py::arg("accepted"), "MALA accept / reject per sample.");
}

}  // namespace bindings
}  // namespace scorekit
