#include "io/work_manifest.hpp"

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <unistd.h>

#include "core/error.hpp"
#include "core/hashing.hpp"
#include "core/provenance.hpp"

namespace fs = std::filesystem;

namespace lmtopo::io {

void write_file_atomically(const std::string& path, const std::string& text) {
  write_file_atomically(path, [&](std::ostream& out) { out << text; });
}

void write_file_atomically(const std::string& path, const std::function<void(std::ostream&)>& write) {
  // A bare file name has no parent to create (and create_directories("") throws).
  if (const fs::path parent = fs::path(path).parent_path(); !parent.empty()) fs::create_directories(parent);
  const std::string tmp = path + ".tmp." + std::to_string(getpid());
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    if (!out) throw RuntimeFailure(tmp + ": cannot write");
    write(out);
    out.flush();
    if (!out) throw RuntimeFailure(tmp + ": write failed");
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) throw RuntimeFailure(path + ": cannot rename from " + tmp);
}

WorkManifest::WorkManifest(std::string output_root) : root_(std::move(output_root)) {}

std::string WorkManifest::record_path(const std::string& stage, const std::string& item) const {
  return (fs::path(root_) / "manifest" / "items" / stage / (item + ".json")).string();
}

nlohmann::json WorkManifest::read(const std::string& stage, const std::string& item) const {
  std::ifstream in(record_path(stage, item));
  if (!in) return nullptr;
  try {
    return nlohmann::json::parse(in);
  } catch (const nlohmann::json::exception&) {  // parse_error, or out_of_range for a number overflow
    return nullptr;  // a torn or hand-edited record counts as missing: the item is redone
  }
}

std::string WorkManifest::state(const std::string& stage, const std::string& item, const std::string& config_hash) const {
  const auto rec = read(stage, item);
  if (rec.is_null()) return "missing";
  if (rec.value("config_hash", "") != config_hash) return "stale config";
  for (const auto& o : rec["outputs"]) {
    const fs::path p = fs::path(root_) / o["path"].get<std::string>();
    std::error_code ec;
    const auto size = fs::file_size(p, ec);
    if (ec || size != o["bytes"].get<unsigned long long>()) return "output changed: " + o["path"].get<std::string>();
  }
  return "complete";
}

bool WorkManifest::is_complete(const std::string& stage, const std::string& item, const std::string& config_hash) const {
  return state(stage, item, config_hash) == "complete";
}

OutputRecord WorkManifest::output_record(const std::string& path, const std::string& sha256) const {
  OutputRecord o;
  o.path = fs::relative(path, root_).string();
  o.sha256 = sha256.empty() ? core::sha256_file(path) : sha256;
  o.bytes = fs::file_size(path);
  return o;
}

void WorkManifest::record_complete(const std::string& stage, const std::string& item, const std::string& config_hash,
                                   const std::vector<OutputRecord>& outputs) const {
  nlohmann::json rec;
  rec["stage"] = stage;
  rec["item"] = item;
  rec["config_hash"] = config_hash;
  rec["git_sha"] = core::git_sha();
  rec["git_dirty"] = core::git_dirty();
  rec["completed_by"] = core::created_by(0)["created_utc"];
  rec["outputs"] = nlohmann::json::array();
  for (const auto& o : outputs) rec["outputs"].push_back({{"path", o.path}, {"sha256", o.sha256}, {"bytes", o.bytes}});
  write_file_atomically(record_path(stage, item), rec.dump(2) + "\n");
}

}  // namespace lmtopo::io
