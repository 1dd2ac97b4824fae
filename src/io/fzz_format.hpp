// FastZigzag's text format: an optional first line with the number of operations, then one
// operation a line, `i v0 v1 ...` (insert) or `d v0 v1 ...` (delete). Bars are written one a line as
// `p b d` (dimension, closed interval of 1-based operation indices).
#pragma once
#include <iosfwd>
#include <string>
#include <vector>

#include "topology/zigzag.hpp"

namespace lmtopo::io {

struct FzzFile {
  std::vector<topology::ZigzagOp> ops;
  std::vector<long> line_of_op;  // 1-based line number of each operation, for error messages
};

// Parses `in`; `name` is used in error messages. Throws InputError naming the file and line.
FzzFile read_fzz(std::istream& in, const std::string& name);
FzzFile read_fzz_file(const std::string& path);

void write_fzz(std::ostream& out, const std::vector<topology::ZigzagOp>& ops);
void write_bars(std::ostream& out, const std::vector<topology::ZigzagBar>& bars);

}  // namespace lmtopo::io
