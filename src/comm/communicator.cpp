// What every Communicator has unless its backend offers more.
#include "cpattn/comm.hpp"
#include "cpattn/error.hpp"

namespace cpattn {

const SymmetricBuffers& Communicator::symmetric_buffers(size_t, Context& ctx) {
  throw Error("path", "a communicator the direct transport runs on", direct_unavailable(ctx.device()));
}

}  // namespace cpattn
