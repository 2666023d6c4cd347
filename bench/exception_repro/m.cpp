#include <nanobind/nanobind.h>
#include <nanobind/stl/string.h>
#include <stdexcept>
namespace nb = nanobind;
struct MyError : std::runtime_error { using std::runtime_error::runtime_error; };
NB_MODULE(NAME, m) {
  nb::register_exception_translator([](const std::exception_ptr& p, void*) {
    try { std::rethrow_exception(p); } catch (const MyError& e) { PyErr_SetString(PyExc_ValueError, e.what()); }
  });
  m.def("plain", [] { throw std::runtime_error("plain"); });
  m.def("mine", [] { throw MyError("mine"); });
  m.def("released", [] { nb::gil_scoped_release r; throw std::runtime_error("released"); });
  m.def("mine_released", [] { nb::gil_scoped_release r; throw MyError("mine released"); });
}
