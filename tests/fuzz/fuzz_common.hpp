// Shared by the libFuzzer harnesses (one parser of untrusted input each). The contract under test:
// any input either parses or raises lmtopo::InputError (exit 2, one line naming the file and field);
// any other exception, a crash or a sanitizer report is a finding. File-based parsers get the input
// written to a file of this process's own scratch folder.
#pragma once
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <filesystem>
#include <fstream>
#include <string>

#include "core/error.hpp"

namespace fuzz {

inline const std::filesystem::path& scratch() {
  static const std::filesystem::path dir = [] {
    const char* base = std::getenv("TMPDIR");
    auto d = std::filesystem::path(base ? base : "/tmp") / ("lmtopo-fuzz-" + std::to_string(getpid()));
    std::filesystem::create_directories(d);
    return d;
  }();
  return dir;
}

inline std::string write_input(const std::string& name, const std::uint8_t* data, std::size_t size) {
  const auto path = scratch() / name;
  std::ofstream(path, std::ios::binary | std::ios::trunc).write(reinterpret_cast<const char*>(data),
                                                                 static_cast<std::streamsize>(size));
  return path.string();
}

// Runs `parse`; InputError is the expected answer to bad input, anything else aborts (a finding).
template <class F>
int expect_parse_or_input_error(F&& parse) {
  try {
    parse();
  } catch (const lmtopo::InputError&) {
  } catch (const std::exception& e) {
    std::fprintf(stderr, "FINDING: %s instead of an InputError\n", e.what());
    std::abort();
  }
  return 0;
}

}  // namespace fuzz
