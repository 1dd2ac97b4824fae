// Error types shared by every layer. The CLI maps them to the exit-status contract:
// InputError -> 2 (bad usage or invalid input), anything else -> 1 (runtime failure).
#pragma once
#include <stdexcept>
#include <string>

namespace lmtopo {

// Invalid user input: a malformed file, a wrong option, an impossible value. The message is one
// line naming the file/field and what was expected.
class InputError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// A failure of the environment or of a library call (I/O, MPI, HDF5) rather than of the input.
class RuntimeFailure : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

}  // namespace lmtopo
