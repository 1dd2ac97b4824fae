#include "io/fzz_format.hpp"

#include <algorithm>
#include <fstream>
#include <limits>
#include <sstream>

#include "core/error.hpp"

namespace lmtopo::io {

FzzFile read_fzz(std::istream& in, const std::string& name) {
  FzzFile file;
  std::string line;
  long line_no = 0;
  long declared = -1;
  bool seen_content = false;
  auto fail = [&](const std::string& what) {
    throw InputError(name + ":" + std::to_string(line_no) + ": " + what);
  };
  while (std::getline(in, line)) {
    ++line_no;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    const auto first = line.find_first_not_of(" \t");
    if (first == std::string::npos || line[first] == '#') continue;
    std::istringstream fields(line.substr(first));
    std::string head;
    if (!(fields >> head)) continue;  // only whitespace that is not ' ' or '\t' (\v, \f)
    if (!seen_content && std::all_of(head.begin(), head.end(), [](char c) { return c >= '0' && c <= '9'; })) {
      std::string extra;
      if (fields >> extra) fail("expected the operation count alone on the first line");
      // At most 18 digits: any such count fits a long (and no filtration has 10^18 operations).
      if (head.size() > 18) fail("operation count '" + head + "' is out of range (expected at most 18 digits)");
      declared = std::stol(head);
      seen_content = true;
      continue;
    }
    seen_content = true;
    if (head != "i" && head != "d") fail("expected 'i' or 'd' followed by vertex ids, got '" + head + "'");
    topology::ZigzagOp op;
    op.insert = head == "i";
    std::string token;
    while (fields >> token) {
      if (token.empty() || !std::all_of(token.begin(), token.end(), [](char c) { return c >= '0' && c <= '9'; }))
        fail("vertex id '" + token + "' is not a non-negative integer");
      unsigned long long v = 0;
      try {
        v = std::stoull(token);
      } catch (const std::exception&) {
        fail("vertex id '" + token + "' is out of range");
      }
      if (v > std::numeric_limits<topology::Vertex>::max()) fail("vertex id '" + token + "' exceeds 2^32-1");
      op.simplex.push_back(static_cast<topology::Vertex>(v));
    }
    if (op.simplex.empty()) fail("operation without vertices");
    std::sort(op.simplex.begin(), op.simplex.end());
    if (std::adjacent_find(op.simplex.begin(), op.simplex.end()) != op.simplex.end())
      fail("a vertex is repeated within one simplex");
    file.ops.push_back(std::move(op));
    file.line_of_op.push_back(line_no);
  }
  if (in.bad()) throw RuntimeFailure(name + ": read error");
  if (declared >= 0 && declared != static_cast<long>(file.ops.size()))
    throw InputError(name + ":1: declares " + std::to_string(declared) + " operations but the file has " +
                     std::to_string(file.ops.size()));
  return file;
}

FzzFile read_fzz_file(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw InputError(path + ": cannot open the zigzag filtration file");
  return read_fzz(in, path);
}

void write_fzz(std::ostream& out, const std::vector<topology::ZigzagOp>& ops) {
  out << ops.size() << '\n';
  for (const auto& op : ops) {
    out << (op.insert ? 'i' : 'd');
    for (auto v : op.simplex) out << ' ' << v;
    out << '\n';
  }
}

void write_bars(std::ostream& out, const std::vector<topology::ZigzagBar>& bars) {
  for (const auto& b : bars) out << b.dim << ' ' << b.birth << ' ' << b.death << '\n';
}

}  // namespace lmtopo::io
