#pragma once
// A Communicator that forwards every call to another one (a LocalComm rank): tests derive
// from it to count calls or to stand for another kind of backend.
#include "cpattn/comm.hpp"

namespace cpattn::testing {

class ForwardingComm : public Communicator {
 public:
  explicit ForwardingComm(Communicator& inner) : inner_(inner) {}
  int rank() const override { return inner_.rank(); }
  int size() const override { return inner_.size(); }
  std::string name() const override { return inner_.name(); }
  bool accepts(Device d) const override { return inner_.accepts(d); }
  void all_gather(const void* s, void* r, size_t n, DType t, Context& c) override { inner_.all_gather(s, r, n, t, c); }
  void reduce_scatter(const void* s, void* r, size_t n, DType t, Context& c) override {
    inner_.reduce_scatter(s, r, n, t, c);
  }
  void all_reduce(const void* s, void* r, size_t n, DType t, Context& c) override { inner_.all_reduce(s, r, n, t, c); }
  void all_to_all(const void* s, void* r, size_t n, DType t, Context& c) override { inner_.all_to_all(s, r, n, t, c); }
  void all_gather_host(const void* s, void* r, size_t bytes) override { inner_.all_gather_host(s, r, bytes); }

 protected:
  Communicator& inner_;
};

}  // namespace cpattn::testing
