#include "io/fzz_format.hpp"

#include <algorithm>
#include <charconv>
#include <fstream>
#include <iterator>
#include <limits>

#include "core/error.hpp"
#include "io/mapped_file.hpp"
#include "io/work_manifest.hpp"

namespace lmtopo::io {

namespace {

bool is_blank(char c) { return c == ' ' || c == '\t' || c == '\v' || c == '\f' || c == '\r'; }
bool all_digits(std::string_view t) {
  return std::all_of(t.begin(), t.end(), [](char c) { return c >= '0' && c <= '9'; });
}

// The whitespace-separated tokens of one line, in place.
class Tokens {
 public:
  explicit Tokens(std::string_view line) : rest_(line) {}
  bool next(std::string_view& token) {
    std::size_t i = 0;
    while (i < rest_.size() && is_blank(rest_[i])) ++i;
    if (i == rest_.size()) return false;
    std::size_t j = i;
    while (j < rest_.size() && !is_blank(rest_[j])) ++j;
    token = rest_.substr(i, j - i);
    rest_ = rest_.substr(j);
    return true;
  }

 private:
  std::string_view rest_;
};

}  // namespace

long FzzFile::line_of_op(topology::Index op) const {
  auto run = std::upper_bound(line_runs.begin(), line_runs.end(), op,
                              [](topology::Index k, const LineRun& r) { return k < r.first_op; });
  if (run == line_runs.begin()) return 0;
  --run;
  return run->line + static_cast<long>(op - run->first_op);
}

FzzFile read_fzz_slice(std::string_view text, const std::string& name, long first_line, bool content_before, long long* declared_count) {
  FzzFile file;
  long line_no = first_line - 1;
  long long declared = -1;
  bool seen_content = content_before;
  auto fail = [&](const std::string& what) {
    throw InputError(name + ":" + std::to_string(line_no) + ": " + what);
  };
  std::vector<topology::Vertex> simplex;
  std::size_t pos = 0;
  while (pos < text.size()) {
    const std::size_t end = std::min(text.find('\n', pos), text.size());
    const std::string_view line = text.substr(pos, end - pos);
    pos = end + 1;
    ++line_no;
    Tokens tokens(line);
    std::string_view head;
    if (!tokens.next(head) || head[0] == '#') continue;
    if (!seen_content && all_digits(head)) {
      std::string_view extra;
      if (tokens.next(extra)) fail("expected the operation count alone on the first line");
      // At most 18 digits: any such count fits a long long (and no filtration has 10^18 operations).
      if (head.size() > 18) fail("operation count '" + std::string(head) + "' is out of range (expected at most 18 digits)");
      std::from_chars(head.data(), head.data() + head.size(), declared);
      seen_content = true;
      continue;
    }
    seen_content = true;
    if (head != "i" && head != "d") fail("expected 'i' or 'd' followed by vertex ids, got '" + std::string(head) + "'");
    simplex.clear();
    std::string_view token;
    while (tokens.next(token)) {
      if (!all_digits(token)) fail("vertex id '" + std::string(token) + "' is not a non-negative integer");
      unsigned long long v = 0;
      if (std::from_chars(token.data(), token.data() + token.size(), v).ec != std::errc())
        fail("vertex id '" + std::string(token) + "' is out of range");
      if (v > std::numeric_limits<topology::Vertex>::max()) fail("vertex id '" + std::string(token) + "' exceeds 2^32-1");
      simplex.push_back(static_cast<topology::Vertex>(v));
    }
    if (simplex.empty()) fail("operation without vertices");
    std::sort(simplex.begin(), simplex.end());
    if (std::adjacent_find(simplex.begin(), simplex.end()) != simplex.end()) fail("a vertex is repeated within one simplex");
    const auto op = static_cast<topology::Index>(file.ops.size());
    if (file.line_runs.empty() || file.line_of_op(op) != line_no) file.line_runs.push_back({op, line_no});
    file.ops.push_back(head == "i", simplex.data(), simplex.data() + simplex.size());
  }
  if (declared_count) *declared_count = declared;
  return file;
}

void check_declared_count(long long declared, long long operations, const std::string& name) {
  if (declared >= 0 && declared != operations)
    throw InputError(name + ":1: declares " + std::to_string(declared) + " operations but the file has " + std::to_string(operations));
}

FzzFile read_fzz_text(std::string_view text, const std::string& name) {
  long long declared = -1;
  FzzFile file = read_fzz_slice(text, name, 1, false, &declared);
  check_declared_count(declared, static_cast<long long>(file.ops.size()), name);
  return file;
}

FzzSliceScan scan_fzz_slice(std::string_view text, int reader, int readers) {
  // A line belongs to the reader whose share of the bytes holds its first byte.
  auto line_start_at_or_after = [&](std::size_t at) {
    if (at == 0 || at >= text.size()) return std::min(at, text.size());
    if (text[at - 1] == '\n') return at;
    const std::size_t newline = text.find('\n', at);
    return newline == std::string_view::npos ? text.size() : newline + 1;
  };
  const auto share = [&](int r) {  // r * size / readers without overflow
    const std::size_t whole = text.size() / static_cast<std::size_t>(readers), rest = text.size() % static_cast<std::size_t>(readers);
    return whole * static_cast<std::size_t>(r) + rest * static_cast<std::size_t>(r) / static_cast<std::size_t>(readers);
  };
  FzzSliceScan scan;
  scan.begin = line_start_at_or_after(share(reader));
  scan.end = line_start_at_or_after(share(reader + 1));
  const std::string_view mine = text.substr(scan.begin, scan.end - scan.begin);
  scan.lines = static_cast<long>(std::count(mine.begin(), mine.end(), '\n'));
  if (!mine.empty() && mine.back() != '\n') ++scan.lines;  // the file's last line, unterminated
  for (std::size_t pos = 0; pos < mine.size() && !scan.has_content;) {
    const std::size_t end = std::min(mine.find('\n', pos), mine.size());
    Tokens tokens(mine.substr(pos, end - pos));
    std::string_view head;
    scan.has_content = tokens.next(head) && head[0] != '#';
    pos = end + 1;
  }
  return scan;
}

FzzFile read_fzz(std::istream& in, const std::string& name) {
  const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (in.bad()) throw RuntimeFailure(name + ": read error");
  return read_fzz_text(text, name);
}

FzzFile read_fzz_file(const std::string& path) {
  const MappedFile mapped(path, "zigzag filtration file");
  return read_fzz_text(std::string_view(reinterpret_cast<const char*>(mapped.data()), mapped.size()), path);
}

void write_fzz(std::ostream& out, const topology::ZigzagOpList& ops) {
  out << ops.size() << '\n';
  write_fzz_lines(out, ops);
}

void write_fzz_lines(std::ostream& out, const topology::ZigzagOpList& ops) {
  for (std::size_t i = 0; i < ops.size(); ++i) {
    out << (ops.is_insert(i) ? 'i' : 'd');
    for (auto v : ops.simplex(i)) out << ' ' << v;
    out << '\n';
  }
}

void write_fzz_file(const std::string& path, const topology::ZigzagOpList& ops) {
  write_file_atomically(path, [&](std::ostream& out) { write_fzz(out, ops); });
}

void append_bar_lines(std::string& text, const topology::ZigzagBar* first, const topology::ZigzagBar* last) {
  constexpr std::size_t kLongestLine = 3 * 21;  // three 64-bit numbers, their separators
  std::size_t at = text.size();
  text.resize(at + kLongestLine * static_cast<std::size_t>(last - first));
  auto put = [&](long long value, char after) {
    at = static_cast<std::size_t>(std::to_chars(text.data() + at, text.data() + text.size(), value).ptr - text.data());
    text[at++] = after;
  };
  for (const topology::ZigzagBar* b = first; b != last; ++b) {
    put(b->dim, ' ');
    put(b->birth, ' ');
    put(b->death, '\n');
  }
  text.resize(at);
}

void write_bars(std::ostream& out, const std::vector<topology::ZigzagBar>& bars) {
  constexpr std::size_t kBarsPerWrite = 1 << 16;
  std::string text;
  for (std::size_t first = 0; first < bars.size(); first += kBarsPerWrite) {
    text.clear();
    append_bar_lines(text, bars.data() + first, bars.data() + std::min(bars.size(), first + kBarsPerWrite));
    out.write(text.data(), static_cast<std::streamsize>(text.size()));
  }
}

}  // namespace lmtopo::io
