#pragma once
// MpiComm: the Communicator over MPI for CPU buffers (one rank per process, under mpirun).
// Include only in builds with MPI (cpattn/config.hpp: CPATTN_HAS_MPI).
#include <mpi.h>

#include "cpattn/comm.hpp"

namespace cpattn {

class MpiComm final : public Communicator {
 public:
  // MPI_COMM_WORLD; initialises MPI if the caller has not (and finalises it at exit).
  MpiComm();
  // A communicator the caller owns. cpattn works on its own duplicate (MPI_Comm_dup, a
  // collective call), so its traffic never mixes with the caller's.
  explicit MpiComm(MPI_Comm comm);
  ~MpiComm() override;
  MpiComm(const MpiComm&) = delete;
  MpiComm& operator=(const MpiComm&) = delete;

  int rank() const override { return rank_; }
  int size() const override { return size_; }
  std::string name() const override { return "mpi"; }
  bool accepts(Device device) const override { return device.type == DeviceType::cpu; }
  MPI_Comm handle() const { return comm_; }

  void all_gather(const void* send, void* recv, size_t count, DType dtype, Context& ctx) override;
  void reduce_scatter(const void* send, void* recv, size_t count, DType dtype, Context& ctx) override;
  void all_reduce(const void* send, void* recv, size_t count, DType dtype, Context& ctx) override;
  void all_to_all(const void* send, void* recv, size_t count, DType dtype, Context& ctx) override;
  void all_gather_host(const void* send, void* recv, size_t bytes) override;

 private:
  MPI_Comm comm_ = MPI_COMM_NULL;
  int rank_ = 0, size_ = 1;
};

}  // namespace cpattn
