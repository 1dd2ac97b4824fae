// Test tool: runs a checkpoint folder on given token ids and dumps every hook (all tokens) and the
// logits as raw float32 files plus meta.json, for the parity tests against transformers.
// Usage: model_dump MODEL_DIR BATCH.json OUT_DIR [float32|bfloat16|float16] [cpu|cuda|cuda:N]
// BATCH.json: {"ids": [[...], ...], "mask": [[...], ...], optional "interventions": {"ffn_set": {"1": [[unit,
// value], ...]}, "ffn_add": {...}, "residual_add": {"0": [floats]}, "skip_blocks": [..]}}
#include <filesystem>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>

#include "core/error.hpp"
#include "model/interventions.hpp"
#include "model/transformer.hpp"

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
