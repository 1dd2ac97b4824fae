// The per-study record of completed work items: one small JSON file per item under
// <output>/manifest/items/<stage>/<item>.json, written atomically (temporary name + rename), so
// SLURM array tasks never contend for one file. An item is complete when its record exists, its
// config hash equals the current one and every output it lists exists with the recorded size.
#pragma once
#include <functional>
#include <iosfwd>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace lmtopo::io {

struct OutputRecord {
  std::string path;    // relative to the output root
  std::string sha256;
  unsigned long long bytes = 0;
};

class WorkManifest {
 public:
  explicit WorkManifest(std::string output_root);
  bool is_complete(const std::string& stage, const std::string& item, const std::string& config_hash) const;
  // Why an item is not complete ("missing", "stale config", "output changed: PATH"), for status.
  std::string state(const std::string& stage, const std::string& item, const std::string& config_hash) const;
  void record_complete(const std::string& stage, const std::string& item, const std::string& config_hash,
                       const std::vector<OutputRecord>& outputs) const;
  nlohmann::json read(const std::string& stage, const std::string& item) const;
  // The record of an output file under the root: relative path, sha256, size. `sha256` may be given
  // when the writer already computed it.
  OutputRecord output_record(const std::string& path, const std::string& sha256 = "") const;
  std::string root() const { return root_; }

 private:
  std::string record_path(const std::string& stage, const std::string& item) const;
  std::string root_;
};

// Writes `text` to `path` through a temporary file and a rename.
void write_file_atomically(const std::string& path, const std::string& text);
// The same, with what `write` streams into the temporary file (large outputs, never held whole).
void write_file_atomically(const std::string& path, const std::function<void(std::ostream&)>& write);

}  // namespace lmtopo::io
