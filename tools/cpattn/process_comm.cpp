// --comm mpi|nccl: this process's communicator (one rank per process under mpirun).
#include "cli.hpp"
#include "cpattn/config.hpp"
#if CPATTN_HAS_MPI
#include "cpattn/mpi_comm.hpp"
#endif
#if CPATTN_HAS_NCCL
#include "cpattn/nccl_comm.hpp"
#endif

namespace cpattn::cli {

std::unique_ptr<Communicator> make_process_comm(const std::string& name, Device& device, bool device_pinned) {
  if (name == "mpi") {
#if CPATTN_HAS_MPI
    if (device.type != DeviceType::cpu) throw Error("--comm", "nccl for --device cuda (MpiComm moves CPU buffers)", "mpi");
    return std::make_unique<MpiComm>();
#else
    throw Error("--comm", "local (this cpattn was built without MPI: apt-get install libopenmpi-dev and rebuild)", "mpi");
#endif
  }
  if (name == "nccl") {
#if CPATTN_HAS_NCCL
    if (device.type != DeviceType::cuda) throw Error("--comm", "local or mpi for --device cpu (NCCL moves GPU buffers)", "nccl");
    auto comm = NcclComm::create_with_mpi(device_pinned ? device.index : -1);
    device = Device::cuda(comm->device());
    return comm;
#else
    throw Error("--comm", "local or mpi (this cpattn was built without NCCL)", "nccl");
#endif
  }
  throw Error("--comm", "local, mpi or nccl", "'" + name + "'");
}

}  // namespace cpattn::cli
