// Checks an HDF5 output against the layout schema of its kind (schemas/hdf5/*.json, selected by
// the root attribute lmtopo_schema).
#pragma once
#include <optional>
#include <string>

namespace lmtopo::io {

struct LayoutError {
  std::string where;  // dataset or attribute path, e.g. "/corpus/text" or "/@git_sha"
  std::string message;
};

// The root attributes every lmtopo output carries (design.md contract 5).
const char* const kProvenanceAttributes[] = {"lmtopo_schema", "lmtopo_version", "git_sha", "git_dirty", "config_json",
                                             "created_by"};

// Throws InputError if the file is not readable HDF5; returns the first layout violation.
std::optional<LayoutError> check_layout(const std::string& path);

}  // namespace lmtopo::io
