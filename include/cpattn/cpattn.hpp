#pragma once
// cpattn: context-parallel attention glue. One include for the whole public API.
#include "cpattn/comm.hpp"
#include "cpattn/context.hpp"
#include "cpattn/cp.hpp"
#include "cpattn/error.hpp"
#include "cpattn/local_comm.hpp"
#include "cpattn/ops.hpp"
#include "cpattn/tensor.hpp"
#include "cpattn/config.hpp"
