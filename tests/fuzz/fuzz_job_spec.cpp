// Job spec YAML: parsing, schema validation, semantic checks.
#include "core/jobspec.hpp"
#include "fuzz_common.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const auto path = fuzz::write_input("job.yaml", data, size);
  return fuzz::expect_parse_or_input_error([&] { (void)lmtopo::core::load_job_spec(path); });
}
