// The tidy CSV tables written beside an HDF5 output (OUT.h5 -> OUT.<table>.csv): field quoting and
// number formatting shared by the stages that write them.
#pragma once
#include <string>

namespace lmtopo::io {

// A CSV field, quoted when it holds a comma, quote or newline.
std::string csv_field(const std::string& s);
// A number with 10 significant digits; NaN as an empty field.
std::string csv_number(double v);
// OUT.h5 -> OUT (the CSV tables are OUT.<table>.csv).
std::string csv_base(const std::string& output);

}  // namespace lmtopo::io
