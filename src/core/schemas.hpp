// The schemas in schemas/ embedded at build time, so validation works wherever the binary runs.
#pragma once
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace lmtopo::core {

const nlohmann::json& job_schema();
// Layout schema of an HDF5 output kind, by the root attribute lmtopo_schema ("corpus/1", ...).
// Throws InputError for an unknown kind.
const nlohmann::json& layout_schema(const std::string& kind);
std::vector<std::string> layout_kinds();
// A template of slurm/ by file name ("stage.sbatch.in"), embedded at build time.
const std::string& embedded_template(const std::string& name);

}  // namespace lmtopo::core
