// Helpers shared by the register_*.cpp files. Inputs arrive validated by the
// Python layer (dtype, shape, contiguity); these only unpack them.
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cstdint>
#include <stdexcept>
#include <string>

#include "scorekit/kernels.hpp"
#include "scorekit/philox.hpp"

namespace scorekit {
namespace bindings {

namespace py = pybind11;

template <class T>
T* data_of(py::array& a) {
    return static_cast<T*>(a.mutable_data());
}

template <class T>
const T* cdata_of(const py::array& a) {
    return static_cast<const T*>(a.data());
}

// The data of an optional array argument (None: nullptr).
template <class T>
T* optional_data(const py::object& a) {
    if (a.is_none()) return nullptr;
    py::array arr = a.cast<py::array>();
    return data_of<T>(arr);
}

template <class T>
const T* optional_cdata(const py::object& a) {
    if (a.is_none()) return nullptr;
    return cdata_of<T>(a.cast<py::array>());
}

// An array of shape () is one value for every sample; shape (B,) is per sample.
template <class T>
RowParam<T> row_param(const py::array& a) {
    if (a.ndim() == 0) return RowParam<T>{nullptr, *cdata_of<T>(a)};
    return RowParam<T>{cdata_of<T>(a), T(0)};
}

// Calls f(T{}) with T the element type of `a` (float32 or float64).
template <class F>
decltype(auto) dispatch_float(const py::array& a, F&& f) {
    if (a.dtype().equal(py::dtype::of<float>())) return f(float{});
    if (a.dtype().equal(py::dtype::of<double>())) return f(double{});
    throw py::type_error("scorekit: expected a float32 or float64 array, got " +
                         std::string(py::str(a.dtype())));
}

// (B, D) of a C-contiguous array of shape (B, ...): B rows of D elements.
struct BatchDims {
    std::int64_t B;
    std::int64_t D;
};
inline BatchDims batch_dims(const py::array& a) {
    const std::int64_t B = a.shape(0);
    return {B, B == 0 ? 0 : static_cast<std::int64_t>(a.size()) / B};
}

inline Stream stream_of(std::uint64_t seed, std::uint64_t counter) { return Stream{seed, counter}; }

void register_info(py::module_& m);
void register_noise(py::module_& m);
void register_perturb(py::module_& m);
void register_langevin(py::module_& m);
void register_losses(py::module_& m);
void register_trace(py::module_& m);
void register_gmm(py::module_& m);
void register_steps(py::module_& m);

}  // namespace bindings
}  // namespace scorekit
