// Test tool: runs a checkpoint folder on given token ids and dumps every hook (all tokens) and the
// logits as raw float32 files plus meta.json, for the parity tests against transformers.
// Usage: model_dump MODEL_DIR BATCH.json OUT_DIR [float32|bfloat16|float16] [cpu|cuda|cuda:N]
// BATCH.json: {"ids": [[...], ...], "mask": [[...], ...], optional "interventions": {"ffn_set": {"1": [[unit,
// value], ...]}, "ffn_add": {...}, "residual_add": {"0": [floats]}, "skip_blocks": [..]}, optional
// "decode_from": N}. With decode_from, the batch runs as incremental decoding does: columns [0, N)
// first, then one column at a time against the key/value cache; only unpooled hooks and the logits
// are dumped (concatenated along the sequence), under the same names as without it.
#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>

#include "core/error.hpp"
#include "model/interventions.hpp"
#include "model/transformer.hpp"

namespace {

using lmtopo::model::Batch;
using lmtopo::model::HookResult;

Batch columns(const Batch& b, std::int64_t lo, std::int64_t hi) {
  Batch out{b.batch, hi - lo, {}, {}, {}};
  for (std::int64_t r = 0; r < b.batch; ++r)
    for (std::int64_t t = lo; t < hi; ++t) {
      out.ids.push_back(b.ids[static_cast<std::size_t>(r * b.seq + t)]);
      out.mask.push_back(b.mask[static_cast<std::size_t>(r * b.seq + t)]);
    }
  return out;
}

// Appends `piece` to `whole` along the sequence axis (axis 1 of logits [B, T, V], 2 of hooks [P, B, T, W]).
void append_along_sequence(HookResult& whole, const HookResult& piece, int axis) {
  if (whole.shape.empty()) {
    whole = piece;
    return;
  }
  std::int64_t outer = 1, inner = 1;
  for (int d = 0; d < axis; ++d) outer *= piece.shape[static_cast<std::size_t>(d)];
  for (std::size_t d = static_cast<std::size_t>(axis) + 1; d < piece.shape.size(); ++d) inner *= piece.shape[d];
  const std::int64_t a = whole.shape[static_cast<std::size_t>(axis)], b = piece.shape[static_cast<std::size_t>(axis)];
  std::vector<float> merged;
  for (std::int64_t o = 0; o < outer; ++o) {
    merged.insert(merged.end(), whole.values.begin() + o * a * inner, whole.values.begin() + (o + 1) * a * inner);
    merged.insert(merged.end(), piece.values.begin() + o * b * inner, piece.values.begin() + (o + 1) * b * inner);
  }
  whole.values = std::move(merged);
  whole.shape[static_cast<std::size_t>(axis)] = a + b;
}

std::map<std::string, HookResult> decode_incrementally(lmtopo::model::Transformer& model, const Batch& b, std::int64_t first,
                                                       const lmtopo::model::Interventions& iv) {
  std::vector<lmtopo::model::Transformer::HookRequest> requests;
  for (const auto& h : lmtopo::model::portable_hooks()) requests.push_back({h, lmtopo::model::Pooling::none, h});
  auto cache = model.new_decoding_cache();
  std::map<std::string, HookResult> whole;
  for (std::int64_t lo = 0; lo < b.seq;) {
    const std::int64_t hi = lo == 0 ? std::max<std::int64_t>(1, first) : lo + 1;
    for (const auto& [name, r] : model.forward_requests(columns(b, lo, hi), requests, true, iv, cache.get()))
      append_along_sequence(whole[name], r, name == "logits" ? 1 : 2);
    lo = hi;
  }
  return whole;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 4) {
    std::cerr << "usage: model_dump MODEL_DIR BATCH.json OUT_DIR [float32|bfloat16|float16] [cpu|cuda|cuda:N]\n";
    return 2;
  }
  try {
    const std::string dtype = argc > 4 ? argv[4] : "float32";
    const std::string device = argc > 5 ? argv[5] : "cpu";
    using lmtopo::model::WeightDType;
    const WeightDType wd = dtype == "bfloat16" ? WeightDType::bfloat16 : dtype == "float16" ? WeightDType::float16 : WeightDType::float32;
    auto model = lmtopo::model::Transformer::load(argv[1], wd, "", device);
    std::ifstream in(argv[2]);
    const auto j = nlohmann::json::parse(in);
    lmtopo::model::Batch b;
    b.batch = static_cast<std::int64_t>(j["ids"].size());
    b.seq = static_cast<std::int64_t>(j["ids"][0].size());
    for (const auto& row : j["ids"])
      for (const auto& v : row) b.ids.push_back(v.get<std::int64_t>());
    for (const auto& row : j["mask"])
      for (const auto& v : row) b.mask.push_back(v.get<std::int64_t>());
    lmtopo::model::Interventions iv;
    if (j.contains("interventions")) iv = lmtopo::model::interventions_from_json(j["interventions"], argv[2]);
    std::filesystem::create_directories(argv[3]);
    nlohmann::json meta;
    if (j.contains("decode_from")) {
      for (const auto& [name, r] : decode_incrementally(*model, b, j["decode_from"].get<std::int64_t>(), iv)) {
        const std::string file = "none." + name + ".f32";
        std::ofstream f(std::filesystem::path(argv[3]) / file, std::ios::binary);
        f.write(reinterpret_cast<const char*>(r.values.data()), static_cast<std::streamsize>(r.values.size() * sizeof(float)));
        meta["none." + name] = {{"file", file}, {"shape", r.shape}, {"points", r.points}};
      }
      std::ofstream(std::filesystem::path(argv[3]) / "meta.json") << meta.dump(2);
      return 0;
    }
    for (const char* pool : {"none", "last", "mean"}) {
      const auto pooling = std::string(pool) == "none" ? lmtopo::model::Pooling::none
                           : std::string(pool) == "last" ? lmtopo::model::Pooling::last
                                                         : lmtopo::model::Pooling::mean;
      const auto out = model->forward(b, lmtopo::model::portable_hooks(), pooling, std::string(pool) == "none", iv);
      for (const auto& [name, r] : out) {
        const std::string file = std::string(pool) + "." + name + ".f32";
        std::ofstream f(std::filesystem::path(argv[3]) / file, std::ios::binary);
        f.write(reinterpret_cast<const char*>(r.values.data()), static_cast<std::streamsize>(r.values.size() * sizeof(float)));
        meta[std::string(pool) + "." + name] = {{"file", file}, {"shape", r.shape}, {"points", r.points}};
      }
    }
    std::ofstream(std::filesystem::path(argv[3]) / "meta.json") << meta.dump(2);
  } catch (const lmtopo::InputError& e) {
    std::cerr << "model_dump: error: " << e.what() << "\n";
    return 2;
  } catch (const std::exception& e) {
    std::cerr << "model_dump: failure: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
