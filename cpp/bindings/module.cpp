#include "common.hpp"

PYBIND11_MODULE(_core, m) {
    m.doc() = "scorekit compiled kernels (internal: use the scorekit package)";
    scorekit::bindings::register_info(m);
    scorekit::bindings::register_noise(m);
    scorekit::bindings::register_perturb(m);
    scorekit::bindings::register_langevin(m);
    scorekit::bindings::register_losses(m);
    scorekit::bindings::register_trace(m);
    scorekit::bindings::register_gmm(m);
    scorekit::bindings::register_steps(m);
}
