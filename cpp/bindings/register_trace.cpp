#include <string>

#include "../src/cpu_backend.hpp"
#include "common.hpp"

namespace scorekit {
namespace bindings {

namespace {
static_assert(sizeof(RunningMoments) == 3 * sizeof(double), "moments are (B, 3) float64 arrays");

ProbeKind probe_kind(const std::string& name) {
    if (name == "rademacher") return ProbeKind::Rademacher;
    if (name == "gaussian") return ProbeKind::Gaussian;
    if (name == "sphere") return ProbeKind::Sphere;
    throw py::value_error("kind must be 'rademacher', 'gaussian' or 'sphere', got '" + name + "'");
}

// (B, m, D) of a C-contiguous (B, m, ...) array of m vectors per sample.
struct ProbeDims {
    std::int64_t B, m, D;
};
ProbeDims probe_dims(const py::array& V) {
    const std::int64_t B = V.shape(0), m = V.shape(1);
    return {B, m, B * m == 0 ? 0 : static_cast<std::int64_t>(V.size()) / (B * m)};
}
}  // namespace

void register_trace(py::module_& m) {
    m.def(
        "probes",
        [](const std::string& kind, py::array out, std::int64_t B, std::int64_t m_, std::int64_t D,
           std::int64_t K, std::int64_t k0, std::uint64_t seed, std::uint64_t counter) {
            const ProbeKind pk = probe_kind(kind);
            dispatch_float(out, [&](auto tag) {
                using T = decltype(tag);
                T* p = data_of<T>(out);
                py::gil_scoped_release release;
                cpu::fill_probes<T>(pk, stream_of(seed, counter), B, m_, D, K, k0, p);
            });
        },
        py::arg("kind"), py::arg("out"), py::arg("B"), py::arg("m"), py::arg("D"), py::arg("K"),
        py::arg("k0"), py::arg("seed"), py::arg("counter"),
        "Probes k0 .. k0 + m of each of B samples (stream rows b * K + k) into out (B, m, D).");
    m.def(
        "trace_moments",
        [](py::array V, py::array AV, py::object active, py::array t, py::array moments,
           std::int64_t first, py::object first_bad) {
            dispatch_float(V, [&](auto tag) {
                using T = decltype(tag);
                const ProbeDims pd = probe_dims(V);
                const T* pv = cdata_of<T>(V);
                const T* pa = cdata_of<T>(AV);
                const std::uint8_t* act = optional_cdata<std::uint8_t>(active);
                double* pt = data_of<double>(t);
                auto* mo = reinterpret_cast<RunningMoments*>(data_of<double>(moments));
                std::int64_t* bad = optional_data<std::int64_t>(first_bad);
                py::gil_scoped_release release;
                cpu::trace_moments<T>(pv, pa, pd.B, pd.m, pd.D, act, pt, mo, first, bad);
            });
        },
        py::arg("V"), py::arg("AV"), py::arg("active"), py::arg("t"), py::arg("moments"),
        py::arg("first") = 0, py::arg("first_bad") = py::none(),
        "Samples v . Av of (B, m, ...) probes into t (B, m); running moments (B, 3) of active "
        "samples; first_bad (B,) int64, where given, gets each sample's first non-finite probe "
        "(probes first .. first + m) where it is still negative.");
    m.def(
        "diagonal_moments",
        [](py::array V, py::array AV, double count, py::array mean, py::array m2) {
            dispatch_float(V, [&](auto tag) {
                using T = decltype(tag);
                const ProbeDims pd = probe_dims(V);
                const T* pv = cdata_of<T>(V);
                const T* pa = cdata_of<T>(AV);
                double* pm = data_of<double>(mean);
                double* p2 = data_of<double>(m2);
                py::gil_scoped_release release;
                cpu::diagonal_moments<T>(pv, pa, pd.B, pd.m, pd.D, count, pm, p2);
            });
        },
        py::arg("V"), py::arg("AV"), py::arg("count"), py::arg("mean"), py::arg("m2"),
        "Elementwise running moments of v * Av over the m probes of (B, m, ...) arrays.");
    m.def(
        "ssm_loss",
        [](const std::string& kind, py::array score, py::array jvp, std::int64_t K,
           bool variance_reduced, double batch_scale, std::uint64_t seed, std::uint64_t counter,
           std::uint64_t first_sample, py::array row_loss, py::object grad_score,
           py::object grad_jvp) {
            const ProbeKind pk = probe_kind(kind);
            dispatch_float(score, [&](auto tag) {
                using T = decltype(tag);
                const BatchDims bd = batch_dims(score);
                const T* ps = cdata_of<T>(score);
                const T* pj = cdata_of<T>(jvp);
                double* pl = data_of<double>(row_loss);
                T* gs = optional_data<T>(grad_score);
                T* gj = optional_data<T>(grad_jvp);
                py::gil_scoped_release release;
                cpu::ssm_loss<T>(pk, stream_of(seed, counter), first_sample, ps, pj, bd.B, K, bd.D,
                                 variance_reduced, batch_scale, pl, gs, gj);
            });
        },
        py::arg("kind"), py::arg("score"), py::arg("jvp"), py::arg("K"),
        py::arg("variance_reduced"), py::arg("batch_scale"), py::arg("seed"), py::arg("counter"),
        py::arg("first_sample"), py::arg("row_loss"), py::arg("grad_score"), py::arg("grad_jvp"),
        "Per-sample sliced score matching losses with regenerated probes.");
    m.def(
        "ism_loss",
        [](py::array score, py::array trace, double batch_scale, py::array row_loss,
           py::object grad_score) {
            dispatch_float(score, [&](auto tag) {
                using T = decltype(tag);
                const BatchDims bd = batch_dims(score);
                const T* ps = cdata_of<T>(score);
                const T* pt = cdata_of<T>(trace);
                double* pl = data_of<double>(row_loss);
                T* gs = optional_data<T>(grad_score);
                py::gil_scoped_release release;
                cpu::ism_loss<T>(ps, pt, bd.B, bd.D, batch_scale, pl, gs);
            });
        },
        py::arg("score"), py::arg("trace"), py::arg("batch_scale"), py::arg("row_loss"),
        py::arg("grad_score"), "Per-sample implicit score matching losses.");
}

}  // namespace bindings
}  // namespace scorekit
