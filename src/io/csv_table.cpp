#include "io/csv_table.hpp"

#include <cmath>
#include <sstream>

namespace lmtopo::io {

std::string csv_field(const std::string& s) {
  if (s.find_first_of(",\"\n") == std::string::npos) return s;
  std::string q = "\"";
  for (char c : s) q += c == '"' ? std::string("\"\"") : std::string(1, c);
  return q + "\"";
}

std::string csv_number(double v) {
  if (std::isnan(v)) return "";
  std::ostringstream out;
  out.precision(10);
  out << v;
  return out.str();
}

std::string csv_base(const std::string& output) {
  return output.size() > 3 && output.compare(output.size() - 3, 3, ".h5") == 0 ? output.substr(0, output.size() - 3) : output;
}

}  // namespace lmtopo::io
