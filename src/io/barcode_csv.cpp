#include "io/barcode_csv.hpp"

#include <fstream>
#include <sstream>

#include "core/error.hpp"

namespace lmtopo::io {

std::vector<topology::PositionBar> read_position_bars_csv(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw InputError(path + ": cannot open the barcode CSV");
  std::string line;
  long line_no = 0;
  std::vector<topology::PositionBar> bars;
  while (std::getline(in, line)) {
    ++line_no;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.empty()) continue;
    if (line_no == 1) {
      if (line != "dimension,birth,death")
        throw InputError(path + ":1: expected the header 'dimension,birth,death', got '" + line + "'");
      continue;
    }
    std::istringstream fields(line);
    std::string a, b, c, extra;
    if (!std::getline(fields, a, ',') || !std::getline(fields, b, ',') || !std::getline(fields, c, ',') ||
        std::getline(fields, extra, ','))
      throw InputError(path + ":" + std::to_string(line_no) + ": expected three comma-separated integers");
    try {
      std::size_t pa = 0, pb = 0, pc = 0;
      topology::PositionBar bar{std::stoi(a, &pa), std::stoi(b, &pb), std::stoi(c, &pc)};
      if (pa != a.size() || pb != b.size() || pc != c.size()) throw std::invalid_argument("trailing");
      if (bar.dim < 0 || bar.birth < 1 || bar.death < bar.birth)
        throw InputError(path + ":" + std::to_string(line_no) +
                         ": expected dimension >= 0 and 1 <= birth <= death");
      bars.push_back(bar);
    } catch (const InputError&) {
      throw;
    } catch (const std::exception&) {
      throw InputError(path + ":" + std::to_string(line_no) + ": expected three comma-separated integers, got '" +
                       line + "'");
    }
  }
  return bars;
}

}  // namespace lmtopo::io
