// Checkpoint folders (Hugging Face layout): which files hold weights, and the study's manifest of
// their sha256 digests with byte-identical checkpoints flagged.
#pragma once
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace lmtopo::io {

// Weight files of a checkpoint folder (*.safetensors, pytorch_model*.bin), sorted. Throws
// InputError naming the folder when there are none or it cannot be read.
std::vector<std::string> weight_files(const std::string& dir);

struct CheckpointDigest {
  std::string model;
  std::string label;
  std::string dir;
  long long step = -1;
  std::vector<std::pair<std::string, std::string>> files;  // (file name, sha256)
  std::string digest;        // sha256 over "name sha256\n" of every weight file
  std::string duplicate_of;  // "model/label" of the first checkpoint with the same digest, or ""
};

// Fills duplicate_of (in order) and returns the manifest JSON.
nlohmann::json checkpoint_manifest_json(std::vector<CheckpointDigest>& checkpoints);

}  // namespace lmtopo::io
