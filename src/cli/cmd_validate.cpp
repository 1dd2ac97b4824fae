// `lmtopo validate PATH`: a job spec against schemas/job.schema.json, or an HDF5 output against the
// layout schema of its kind (design.md contract 4).
#include <iostream>

#include "cli/command.hpp"
#include "core/error.hpp"
#include "core/jobspec.hpp"
#include "io/h5_layout.hpp"
#include "mpi/collective.hpp"

namespace lmtopo::cli {
namespace {

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

int run_validate(const po::variables_map& vm, const std::vector<std::string>&) {
  const std::string path = vm["path"].as<std::string>();
  if (mpi::rank() != 0) return 0;
  if (ends_with(path, ".h5") || ends_with(path, ".hdf5")) {
    if (auto e = io::check_layout(path)) throw InputError(path + ": " + e->where + ": " + e->message);
    std::cout << path << ": valid\n";
    return 0;
  }
  if (ends_with(path, ".yaml") || ends_with(path, ".yml")) {
    const auto spec = core::load_job_spec(path);
    std::cout << path << ": valid (study " << spec.study << ", " << spec.models.size() << " model(s))\n";
    return 0;
  }
  throw InputError(path + ": expected a job spec (*.yaml) or an lmtopo output (*.h5)");
}

}  // namespace

Command make_validate_command() {
  Command c;
  c.name = "validate";
  c.summary = "check a job spec (*.yaml) or an output file (*.h5) against its schema";
  c.usage = "lmtopo validate PATH";
  c.description =
      "A job spec is checked against schemas/job.schema.json (types, required fields, unknown keys with a "
      "did-you-mean, impossible values) and then for what the schema cannot say (checkpoint folders exist, "
      "model names are unique, homology dimensions fit the simplex dimension, ...). An HDF5 output is checked "
      "against the layout schema of its kind (schemas/hdf5/, chosen by the root attribute lmtopo_schema). "
      "Exit 0 when valid; 2 with `FILE: FIELD-OR-DATASET: expectation` on the first problem.";
  c.add_options = [](po::options_description& d) {
    d.add_options()("path", po::value<std::string>()->required(), "file to check (positional)");
  };
  c.positionals = {{"path", 1}};
  c.run = run_validate;
  return c;
}

}  // namespace lmtopo::cli
