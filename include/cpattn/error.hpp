#pragma once
// cpattn::Error: every invalid argument and every backend failure surfaces as one of these.
#include <stdexcept>
#include <string>

namespace cpattn {

class Error : public std::runtime_error {
 public:
  // `argument` names what was wrong ("lses", "cp_group", "CUDA"), `expected` what a valid
  // value looks like, `got` what the caller passed.
  Error(std::string argument, std::string expected, std::string got)
      : std::runtime_error(format(argument, expected, got)),
        argument_(std::move(argument)),
        expected_(std::move(expected)),
        got_(std::move(got)) {}

  const std::string& argument() const noexcept { return argument_; }
  const std::string& expected() const noexcept { return expected_; }
  const std::string& got() const noexcept { return got_; }

 private:
  static std::string format(const std::string& a, const std::string& e, const std::string& g) {
    return "cpattn: invalid " + a + ": expected " + e + ", got " + g;
  }
  std::string argument_, expected_, got_;
};

}  // namespace cpattn
