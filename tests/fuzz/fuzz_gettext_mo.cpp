// GNU gettext binary catalogs (.mo), both byte orders.
#include "fuzz_common.hpp"
#include "io/gettext_catalog.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const auto path = fuzz::write_input("catalog.mo", data, size);
  return fuzz::expect_parse_or_input_error([&] { (void)lmtopo::io::read_mo(path); });
}
