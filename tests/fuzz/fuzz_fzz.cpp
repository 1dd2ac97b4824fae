// FastZigzag text format (design.md contract 3), then the cone matrix, reduction and read-out of what
// parses when it is small; an invalid filtration must be reported as InvalidZigzag (the CLI names the
// line), never crash.
#include <sstream>

#include "fuzz_common.hpp"
#include "io/fzz_format.hpp"
#include "topology/reducers.hpp"
#include "topology/zigzag.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  return fuzz::expect_parse_or_input_error([&] {
    std::istringstream in(std::string(reinterpret_cast<const char*>(data), size));
    const auto file = lmtopo::io::read_fzz(in, "input.fzz");
    if (file.ops.size() > 64) return;
    try {
      const auto cone = lmtopo::topology::build_cone_matrix(file.ops);
      (void)lmtopo::topology::read_out_bars(cone, lmtopo::topology::reduce_twist(cone.matrix));
    } catch (const lmtopo::topology::InvalidZigzag&) {
    }
  });
}
