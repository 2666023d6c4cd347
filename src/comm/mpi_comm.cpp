// MpiComm: MPI collectives on CPU buffers. f16/bf16 sums use a user reduction that adds
// in f32 and rounds once per pairwise step (MPI has no 16-bit float types).
#include "cpattn/mpi_comm.hpp"

#include <climits>
#include <cstdlib>
#include <mutex>

#include "../backend/convert.hpp"
#include "cpattn/error.hpp"

#define CPATTN_CHECK_MPI(call)                                                                  \
  do {                                                                                          \
    const int cpattn_rc_ = (call);                                                              \
    if (cpattn_rc_ != MPI_SUCCESS) {                                                            \
      char text_[MPI_MAX_ERROR_STRING];                                                         \
      int len_ = 0;                                                                             \
      MPI_Error_string(cpattn_rc_, text_, &len_);                                               \
      throw ::cpattn::Error("MPI", "MPI_SUCCESS from " #call, std::string(text_, len_));       \
    }                                                                                           \
  } while (0)

namespace cpattn {
namespace {

template <float (*Load)(uint16_t), uint16_t (*Store)(float)>
void sum16(void* in, void* inout, int* len, MPI_Datatype*) {
  const auto* a = static_cast<const uint16_t*>(in);
  auto* b = static_cast<uint16_t*>(inout);
  for (int i = 0; i < *len; ++i) b[i] = Store(Load(a[i]) + Load(b[i]));
}

struct Types16 {
  MPI_Datatype half = MPI_DATATYPE_NULL, bfloat = MPI_DATATYPE_NULL;
  MPI_Op sum_half = MPI_OP_NULL, sum_bfloat = MPI_OP_NULL;
};

const Types16& types16() {
  static Types16 t;
  static std::once_flag once;
  std::call_once(once, [] {
    CPATTN_CHECK_MPI(MPI_Type_contiguous(2, MPI_BYTE, &t.half));
    CPATTN_CHECK_MPI(MPI_Type_commit(&t.half));
    CPATTN_CHECK_MPI(MPI_Type_contiguous(2, MPI_BYTE, &t.bfloat));
    CPATTN_CHECK_MPI(MPI_Type_commit(&t.bfloat));
    CPATTN_CHECK_MPI(MPI_Op_create(&sum16<detail::f16_to_f32, detail::f32_to_f16>, 1, &t.sum_half));
    CPATTN_CHECK_MPI(MPI_Op_create(&sum16<detail::bf16_to_f32, detail::f32_to_bf16>, 1, &t.sum_bfloat));
  });
  return t;
}

MPI_Datatype mpi_type(DType d) {
  switch (d) {
    case DType::f64: return MPI_DOUBLE;
    case DType::f32: return MPI_FLOAT;
    case DType::f16: return types16().half;
    case DType::bf16: return types16().bfloat;
    case DType::i64: return MPI_INT64_T;
    case DType::i32: return MPI_INT32_T;
    case DType::i16: return MPI_INT16_T;
    case DType::i8: return MPI_INT8_T;
    default: return MPI_UINT8_T;
  }
}

MPI_Op sum_op(DType d) {
  if (d == DType::f16) return types16().sum_half;
  if (d == DType::bf16) return types16().sum_bfloat;
  return MPI_SUM;
}

int mpi_count(size_t count) {
  if (count > static_cast<size_t>(INT_MAX))
    throw Error("count", "at most INT_MAX elements per MPI collective", std::to_string(count));
  return static_cast<int>(count);
}

void ensure_initialized() {
  int initialized = 0;
  CPATTN_CHECK_MPI(MPI_Initialized(&initialized));
  if (initialized) return;
  int provided = 0;
  CPATTN_CHECK_MPI(MPI_Init_thread(nullptr, nullptr, MPI_THREAD_FUNNELED, &provided));
  std::atexit([] {
    int finalized = 0;
    MPI_Finalized(&finalized);
    if (!finalized) MPI_Finalize();
  });
}

}  // namespace

MpiComm::MpiComm() : MpiComm((ensure_initialized(), MPI_COMM_WORLD)) {}

MpiComm::MpiComm(MPI_Comm comm) {
  if (comm == MPI_COMM_NULL) throw Error("comm", "a valid MPI communicator", "MPI_COMM_NULL");
  CPATTN_CHECK_MPI(MPI_Comm_dup(comm, &comm_));
  CPATTN_CHECK_MPI(MPI_Comm_set_errhandler(comm_, MPI_ERRORS_RETURN));
  CPATTN_CHECK_MPI(MPI_Comm_rank(comm_, &rank_));
  CPATTN_CHECK_MPI(MPI_Comm_size(comm_, &size_));
}

MpiComm::~MpiComm() {
  int finalized = 0;
  MPI_Finalized(&finalized);
  if (!finalized && comm_ != MPI_COMM_NULL) MPI_Comm_free(&comm_);
}

void MpiComm::all_gather(const void* send, void* recv, size_t count, DType dtype, Context&) {
  CPATTN_CHECK_MPI(MPI_Allgather(send, mpi_count(count), mpi_type(dtype), recv, mpi_count(count), mpi_type(dtype), comm_));
}

void MpiComm::reduce_scatter(const void* send, void* recv, size_t count, DType dtype, Context&) {
  CPATTN_CHECK_MPI(MPI_Reduce_scatter_block(send, recv, mpi_count(count), mpi_type(dtype), sum_op(dtype), comm_));
}

void MpiComm::all_reduce(const void* send, void* recv, size_t count, DType dtype, Context&) {
  CPATTN_CHECK_MPI(MPI_Allreduce(send == recv ? MPI_IN_PLACE : send, recv, mpi_count(count), mpi_type(dtype),
                                 sum_op(dtype), comm_));
}

void MpiComm::all_to_all(const void* send, void* recv, size_t count, DType dtype, Context&) {
  CPATTN_CHECK_MPI(MPI_Alltoall(send, mpi_count(count), mpi_type(dtype), recv, mpi_count(count), mpi_type(dtype), comm_));
}

void MpiComm::all_gather_host(const void* send, void* recv, size_t bytes) {
  CPATTN_CHECK_MPI(MPI_Allgather(send, mpi_count(bytes), MPI_BYTE, recv, mpi_count(bytes), MPI_BYTE, comm_));
}

}  // namespace cpattn
