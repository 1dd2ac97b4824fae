// FastZigzag's text format: an optional first line with the number of operations, then one
// operation a line, `i v0 v1 ...` (insert) or `d v0 v1 ...` (delete). Bars are written one a line as
// `p b d` (dimension, closed interval of 1-based operation indices).
#pragma once
#include <iosfwd>
#include <string>
#include <string_view>
#include <vector>

#include "topology/zigzag.hpp"

namespace lmtopo::io {

struct FzzFile {
  topology::ZigzagOpList ops;

  // 1-based line number of operation `op` (0-based), for error messages.
  long line_of_op(topology::Index op) const;

  // Where the line numbers jump (comments, blank lines, the count line): from operation `first_op`
  // on, operation k is on line `line + (k - first_op)` until the next run. Usually one run.
  struct LineRun {
    topology::Index first_op;
    long line;
  };
  std::vector<LineRun> line_runs;
};

// Parses the text of a file; `name` is used in error messages. Throws InputError naming the file and
// line. One pass over the bytes with std::from_chars: no per-line or per-operation allocation.
FzzFile read_fzz_text(std::string_view text, const std::string& name);
FzzFile read_fzz(std::istream& in, const std::string& name);
FzzFile read_fzz_file(const std::string& path);  // memory-mapped

void write_fzz(std::ostream& out, const topology::ZigzagOpList& ops);

// Writes `ops` to `path` through a temporary file and a rename (an interrupted write leaves no `path`).
void write_fzz_file(const std::string& path, const topology::ZigzagOpList& ops);
void write_bars(std::ostream& out, const std::vector<topology::ZigzagBar>& bars);

}  // namespace lmtopo::io
