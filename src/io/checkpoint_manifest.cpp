#include "io/checkpoint_manifest.hpp"

#include <algorithm>
#include <filesystem>
#include <map>

#include "core/error.hpp"
#include "core/hashing.hpp"

namespace fs = std::filesystem;

namespace lmtopo::io {

std::vector<std::string> weight_files(const std::string& dir) {
  std::error_code ec;
  std::vector<std::string> out;
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    const std::string name = entry.path().filename().string();
    const bool safetensors = name.size() > 12 && name.compare(name.size() - 12, 12, ".safetensors") == 0;
    const bool torch_bin = name.rfind("pytorch_model", 0) == 0 && name.size() > 4 && name.compare(name.size() - 4, 4, ".bin") == 0;
    if (entry.is_regular_file() && (safetensors || torch_bin)) out.push_back(entry.path().string());
  }
  if (ec) throw InputError(dir + ": cannot read the checkpoint folder");
  if (out.empty()) throw InputError(dir + ": no weight files (*.safetensors or pytorch_model*.bin) in the checkpoint folder");
  std::sort(out.begin(), out.end());
  return out;
}

nlohmann::json checkpoint_manifest_json(std::vector<CheckpointDigest>& checkpoints) {
  std::map<std::string, std::string> first_with;
  nlohmann::json out = nlohmann::json::array();
  for (auto& c : checkpoints) {
    std::string joined;
    for (const auto& [name, sha] : c.files) joined += name + " " + sha + "\n";
    c.digest = core::sha256_hex(joined);
    const std::string who = c.model + "/" + c.label;
    auto [it, inserted] = first_with.emplace(c.digest, who);
    c.duplicate_of = inserted ? "" : it->second;
    nlohmann::json j;
    j["model"] = c.model;
    j["checkpoint"] = c.label;
    j["dir"] = c.dir;
    j["step"] = c.step;
    j["digest"] = c.digest;
    j["duplicate_of"] = c.duplicate_of.empty() ? nlohmann::json(nullptr) : nlohmann::json(c.duplicate_of);
    j["files"] = nlohmann::json::object();
    for (const auto& [name, sha] : c.files) j["files"][name] = sha;
    out.push_back(j);
  }
  return out;
}

}  // namespace lmtopo::io
