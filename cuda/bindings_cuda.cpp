// scorekit._cuda: the CUDA launchers for the Python layer, which has already
// validated every argument and passes device pointers as integers (from
// __cuda_array_interface__), the CUDA device and the caller's stream handle.
// This file only unpacks.
#include <pybind11/pybind11.h>

#include <cstdint>
#include <string>

#include "cuda_backend.hpp"

namespace py = pybind11;
namespace sc = scorekit::cuda;

namespace {

template <class T>
T* ptr(std::uintptr_t p) {
    return reinterpret_cast<T*>(p);
}

// A per-sample parameter: device pointer p (0: one value for every sample).
template <class T>
scorekit::RowParam<T> row_param(std::uintptr_t p, double value) {
    return scorekit::RowParam<T>{ptr<const T>(p), static_cast<T>(value)};
}

void* stream_of(std::uintptr_t s) { return reinterpret_cast<void*>(s); }

// Calls f(T{}) for dtype code 4 (float32) or 8 (float64).
template <class F>
void by_dtype(int itemsize, F&& f) {
    if (itemsize == 4) return f(float{});
    if (itemsize == 8) return f(double{});
    throw py::type_error("scorekit._cuda: itemsize must be 4 or 8");
}

}  // namespace

PYBIND11_MODULE(_cuda, m) {
    m.doc() = "scorekit CUDA launchers (device pointers in, kernels enqueued on the given stream)";
    m.def("device_count", []() { return sc::device_count(); });
    m.def(
        "runtime_status",
        []() {
            std::string why;
            sc::device_count(&why);
            return why;
        },
        "Why the runtime sees no device (the CUDA error text), or '' when it sees one.");
    m.def("chunk_threads_setting", &sc::chunk_threads_setting,
          "Threads per chunk of the row reductions: 0 (chosen by kernel, size and device), 8 "
          "or 32.");
    m.def("set_chunk_threads", &sc::set_chunk_threads, py::arg("threads"),
          "Sets the threads per chunk of the row reductions (0, 8 or 32; the same bits).");
    m.def(
        "upload",
        [](py::buffer host, std::uintptr_t dst, int device, std::uintptr_t stream) {
            const py::buffer_info info = host.request();  // C-contiguous (checked by the caller)
            const auto nbytes = static_cast<std::size_t>(info.size * info.itemsize);
            py::gil_scoped_release release;
            sc::upload(info.ptr, nbytes, ptr<void>(dst), device, stream_of(stream));
        },
        py::arg("host"), py::arg("dst"), py::arg("device"), py::arg("stream"),
        "Copies a C-contiguous host buffer to device memory dst on the given stream.");
    m.def(
        "fill_noise",
        [](int kind, std::uintptr_t out, std::int64_t n, int itemsize, std::uint64_t seed,
           std::uint64_t counter, std::uint64_t offset, int device, std::uintptr_t stream) {
            by_dtype(itemsize, [&](auto tag) {
                using T = decltype(tag);
                py::gil_scoped_release release;
                sc::fill_noise<T>(static_cast<sc::NoiseKind>(kind), scorekit::Stream{seed, counter},
                                  offset, n, ptr<T>(out), device, stream_of(stream));
            });
        },
        py::arg("kind"), py::arg("out"), py::arg("n"), py::arg("itemsize"), py::arg("seed"),
        py::arg("counter"), py::arg("offset"), py::arg("device"), py::arg("stream"));
    m.def(
        "sphere_rows",
        [](std::uintptr_t v, std::int64_t rows, std::int64_t D, std::uintptr_t work, int itemsize,
           int device, std::uintptr_t stream) {
            by_dtype(itemsize, [&](auto tag) {
                using T = decltype(tag);
                py::gil_scoped_release release;
                sc::sphere_rows<T>(ptr<T>(v), rows, D, ptr<double>(work), device,
                                   stream_of(stream));
            });
        });
    m.def(
        "perturb",
        [](std::uintptr_t x, std::int64_t B, std::int64_t D, std::uintptr_t scale_p, double scale,
           std::uintptr_t sigma_p, double sigma, std::uint64_t seed, std::uint64_t counter,
           std::uint64_t first_sample, std::uintptr_t out, int itemsize, int device,
           std::uintptr_t stream) {
            by_dtype(itemsize, [&](auto tag) {
                using T = decltype(tag);
                py::gil_scoped_release release;
                sc::perturb<T>(ptr<const T>(x), B, D, row_param<T>(scale_p, scale),
                               row_param<T>(sigma_p, sigma), scorekit::Stream{seed, counter},
                               first_sample, ptr<T>(out), device, stream_of(stream));
            });
        });
    m.def(
        "langevin_step",
        [](std::uintptr_t x, std::uintptr_t score, std::int64_t B, std::int64_t D,
           std::uintptr_t step_p, double step, std::uint64_t seed, std::uint64_t counter,
           std::uint64_t first_sample, std::uintptr_t out, int itemsize, int device,
           std::uintptr_t stream) {
            by_dtype(itemsize, [&](auto tag) {
                using T = decltype(tag);
                py::gil_scoped_release release;
                sc::langevin_step<T>(ptr<const T>(x), ptr<const T>(score), B, D,
                                     row_param<T>(step_p, step), scorekit::Stream{seed, counter},
                                     first_sample, ptr<T>(out), device, stream_of(stream));
            });
        });
    m.def(
        "affine_step",
        [](std::uintptr_t x, std::uintptr_t score, std::int64_t B, std::int64_t D,
           std::uintptr_t a_p, double a, std::uintptr_t c_p, double c, std::uintptr_t g_p, double g,
           std::uint64_t seed, std::uint64_t counter, std::uint64_t first_sample,
           std::uintptr_t out, std::uintptr_t out_mean, int itemsize, int device,
           std::uintptr_t stream) {
            by_dtype(itemsize, [&](auto tag) {
                using T = decltype(tag);
                py::gil_scoped_release release;
                sc::affine_step<T>(ptr<const T>(x), ptr<const T>(score), B, D, row_param<T>(a_p, a),
                                   row_param<T>(c_p, c), row_param<T>(g_p, g),
                                   scorekit::Stream{seed, counter}, first_sample, ptr<T>(out),
                                   ptr<T>(out_mean), device, stream_of(stream));
            });
        });
    m.def(
        "dsm_loss",
        [](std::uintptr_t score, std::uintptr_t noise, std::int64_t B, std::int64_t D,
           std::uintptr_t sigma_p, double sigma, bool weight_is_sigma2, std::uintptr_t weight_p,
           double weight, double batch_scale, std::uint64_t seed, std::uint64_t counter,
           std::uint64_t first_sample, std::uintptr_t partial, std::uintptr_t row_loss,
           std::uintptr_t row_loss_out, std::uintptr_t grad, int itemsize, int device,
           std::uintptr_t stream) {
            by_dtype(itemsize, [&](auto tag) {
                using T = decltype(tag);
                py::gil_scoped_release release;
                sc::dsm_loss<T>(ptr<const T>(score), ptr<const T>(noise), B, D,
                                row_param<T>(sigma_p, sigma), weight_is_sigma2,
                                row_param<T>(weight_p, weight), batch_scale,
                                scorekit::Stream{seed, counter}, first_sample,
                                ptr<double>(partial), ptr<double>(row_loss),
                                ptr<T>(row_loss_out), ptr<T>(grad), device, stream_of(stream));
            });
        });
    m.def(
        "ssm_loss",
        [](int kind, std::uintptr_t score, std::uintptr_t jvp, std::int64_t B, std::int64_t K,
           std::int64_t D, bool variance_reduced, double batch_scale, std::uint64_t seed,
           std::uint64_t counter, std::uint64_t first_sample, std::uintptr_t work,
           std::uintptr_t row_loss, std::uintptr_t row_loss_out, std::uintptr_t grad_score,
           std::uintptr_t grad_jvp, int itemsize, int device, std::uintptr_t stream) {
            by_dtype(itemsize, [&](auto tag) {
                using T = decltype(tag);
                py::gil_scoped_release release;
                sc::ssm_loss<T>(static_cast<scorekit::ProbeKind>(kind),
                                scorekit::Stream{seed, counter}, first_sample, ptr<const T>(score),
                                ptr<const T>(jvp), B, K, D, variance_reduced, batch_scale,
                                ptr<double>(work), ptr<double>(row_loss), ptr<T>(row_loss_out),
                                ptr<T>(grad_score), ptr<T>(grad_jvp), device, stream_of(stream));
            });
        });
    m.def(
        "ism_loss",
        [](std::uintptr_t score, std::uintptr_t trace, std::int64_t B, std::int64_t D,
           double batch_scale, std::uintptr_t work, std::uintptr_t row_loss,
           std::uintptr_t row_loss_out, std::uintptr_t grad_score, int itemsize, int device,
           std::uintptr_t stream) {
            by_dtype(itemsize, [&](auto tag) {
                using T = decltype(tag);
                py::gil_scoped_release release;
                sc::ism_loss<T>(ptr<const T>(score), ptr<const T>(trace), B, D, batch_scale,
                                ptr<double>(work), ptr<double>(row_loss), ptr<T>(row_loss_out),
                                ptr<T>(grad_score), device, stream_of(stream));
            });
        });
    m.def(
        "langevin_corrector",
        [](std::uintptr_t x, std::uintptr_t score, std::int64_t B, std::int64_t D, double snr,
           std::uintptr_t alpha_p, double alpha, bool per_sample, std::uint64_t seed,
           std::uint64_t counter, std::uint64_t first_sample, std::uintptr_t out,
           std::uintptr_t out_mean, std::uintptr_t step, std::uintptr_t work, int itemsize,
           int device, std::uintptr_t stream) {
            by_dtype(itemsize, [&](auto tag) {
                using T = decltype(tag);
                py::gil_scoped_release release;
                sc::langevin_corrector<T>(ptr<const T>(x), ptr<const T>(score), B, D, snr,
                                          row_param<T>(alpha_p, alpha), per_sample,
                                          scorekit::Stream{seed, counter}, first_sample,
                                          ptr<T>(out), ptr<T>(out_mean), ptr<double>(step),
                                          ptr<double>(work), device, stream_of(stream));
            });
        });
    m.def(
        "mala_accept",
        [](std::uintptr_t x, std::uintptr_t score, std::uintptr_t logp, std::uintptr_t prop,
           std::uintptr_t score_prop, std::uintptr_t logp_prop, std::int64_t B, std::int64_t D,
           std::uintptr_t h_p, double h, std::uint64_t seed, std::uint64_t counter,
           std::uint64_t first_sample, std::uintptr_t x_out, std::uintptr_t score_out,
           std::uintptr_t logp_out, std::uintptr_t accepted, std::uintptr_t work, int itemsize,
           int device, std::uintptr_t stream) {
            by_dtype(itemsize, [&](auto tag) {
                using T = decltype(tag);
                py::gil_scoped_release release;
                sc::mala_accept<T>(ptr<const T>(x), ptr<const T>(score), ptr<const double>(logp),
                                   ptr<const T>(prop), ptr<const T>(score_prop),
                                   ptr<const double>(logp_prop), B, D, row_param<T>(h_p, h),
                                   scorekit::Stream{seed, counter}, first_sample, ptr<T>(x_out),
                                   ptr<T>(score_out), ptr<double>(logp_out),
                                   ptr<std::uint8_t>(accepted), ptr<double>(work), device,
                                   stream_of(stream));
            });
        });
    m.def(
        "probe_rows",
        [](int kind, std::uint64_t seed, std::uint64_t counter, std::int64_t B, std::int64_t m,
           std::int64_t D, std::int64_t K, std::uint64_t row0, std::uintptr_t out,
           std::uintptr_t work, int itemsize, int device, std::uintptr_t stream) {
            by_dtype(itemsize, [&](auto tag) {
                using T = decltype(tag);
                py::gil_scoped_release release;
                sc::probe_rows<T>(static_cast<scorekit::ProbeKind>(kind),
                                  scorekit::Stream{seed, counter}, B, m, D, K, row0, ptr<T>(out),
                                  ptr<double>(work), device, stream_of(stream));
            });
        });
    m.def(
        "trace_moments",
        [](std::uintptr_t V, std::uintptr_t AV, std::int64_t B, std::int64_t m, std::int64_t D,
           std::uintptr_t active, std::uintptr_t t, std::uintptr_t moments, std::int64_t first,
           std::uintptr_t first_bad, std::uintptr_t work, int itemsize, int device,
           std::uintptr_t stream) {
            by_dtype(itemsize, [&](auto tag) {
                using T = decltype(tag);
                py::gil_scoped_release release;
                sc::trace_moments<T>(ptr<const T>(V), ptr<const T>(AV), B, m, D,
                                     ptr<const std::uint8_t>(active), ptr<double>(t),
                                     ptr<scorekit::RunningMoments>(moments), first,
                                     ptr<std::int64_t>(first_bad), ptr<double>(work), device,
                                     stream_of(stream));
            });
        });
    m.def(
        "diagonal_moments",
        [](std::uintptr_t V, std::uintptr_t AV, std::int64_t B, std::int64_t m, std::int64_t D,
           double count, std::uintptr_t mean, std::uintptr_t m2, int itemsize, int device,
           std::uintptr_t stream) {
            by_dtype(itemsize, [&](auto tag) {
                using T = decltype(tag);
                py::gil_scoped_release release;
                sc::diagonal_moments<T>(ptr<const T>(V), ptr<const T>(AV), B, m, D, count,
                                        ptr<double>(mean), ptr<double>(m2), device,
                                        stream_of(stream));
            });
        });
    m.def(
        "reduce_losses",
        [](std::uintptr_t rows, std::int64_t B, bool mean, std::uintptr_t out, int device,
           std::uintptr_t stream) {
            py::gil_scoped_release release;
            sc::reduce_losses(ptr<const double>(rows), B, mean, ptr<double>(out), device,
                              stream_of(stream));
        });
    m.def(
        "gmm_eval",
        [](std::uintptr_t means, std::uintptr_t vars, std::uintptr_t log_weights, std::int64_t K,
           std::int64_t D, std::uintptr_t x, std::int64_t B, std::uintptr_t sigma_p, double sigma,
           std::uintptr_t log_p, std::uintptr_t score, std::uintptr_t div, std::uintptr_t work,
           int itemsize, int device, std::uintptr_t stream) {
            const scorekit::GmmParams p{ptr<const double>(means), ptr<const double>(vars),
                                        ptr<const double>(log_weights), K, D};
            by_dtype(itemsize, [&](auto tag) {
                using T = decltype(tag);
                py::gil_scoped_release release;
                sc::gmm_eval<T>(p, ptr<const T>(x), B, row_param<double>(sigma_p, sigma),
                                ptr<double>(log_p), ptr<T>(score), ptr<double>(div),
                                ptr<double>(work), device, stream_of(stream));
            });
        });
    // Doubles of scratch (`work` / `partial`) each launcher needs.
    m.def("dsm_work", &sc::dsm_work, py::arg("B"), py::arg("D"));
    m.def("ssm_work", &sc::ssm_work, py::arg("B"), py::arg("K"), py::arg("D"));
    m.def("ism_work", &sc::ism_work, py::arg("B"), py::arg("D"));
    m.def("corrector_work", &sc::corrector_work, py::arg("B"), py::arg("D"));
    m.def("mala_work", &sc::mala_work, py::arg("B"), py::arg("D"));
    m.def("trace_work", &sc::trace_work, py::arg("B"), py::arg("m"), py::arg("D"));
    m.def("sphere_work", &sc::sphere_work, py::arg("rows"), py::arg("D"));
    m.def("gmm_work", &sc::gmm_work, py::arg("B"), py::arg("K"), py::arg("D"),
          py::arg("per_sample"));
}
