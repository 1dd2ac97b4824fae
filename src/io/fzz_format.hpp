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

// Reading one file from several processes, each its own lines (so that no process holds all the
// operations): scan_fzz_slice gives reader `reader` of `readers` the lines that start in its equal
// share of the bytes, how many lines they are and whether any holds an operation or the count; with
// the lines and content before it (the sums over the earlier readers), read_fzz_slice parses them
// exactly as read_fzz_text parses the whole file (the same line numbers and errors). The count line,
// if the slice holds it, goes to `declared_count` (-1 if not); check_declared_count compares it with
// every reader's operations together.
struct FzzSliceScan {
  std::size_t begin = 0, end = 0;  // bytes of `text`
  long lines = 0;
  bool has_content = false;
};
FzzSliceScan scan_fzz_slice(std::string_view text, int reader, int readers);
FzzFile read_fzz_slice(std::string_view slice, const std::string& name, long first_line, bool content_before,
                       long long* declared_count);
void check_declared_count(long long declared, long long operations, const std::string& name);
FzzFile read_fzz_file(const std::string& path);  // memory-mapped

void write_fzz(std::ostream& out, const topology::ZigzagOpList& ops);
// The operation lines alone (write_fzz = the count line, then these).
void write_fzz_lines(std::ostream& out, const topology::ZigzagOpList& ops);

// Writes `ops` to `path` through a temporary file and a rename (an interrupted write leaves no `path`).
void write_fzz_file(const std::string& path, const topology::ZigzagOpList& ops);
// The bars' lines, "dim birth death" each, in their order.
void write_bars(std::ostream& out, const std::vector<topology::ZigzagBar>& bars);
// The lines of the bars [first, last) appended to `text` (std::to_chars: several times faster than
// a stream).
void append_bar_lines(std::string& text, const topology::ZigzagBar* first, const topology::ZigzagBar* last);

}  // namespace lmtopo::io
