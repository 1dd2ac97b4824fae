#include "model/interventions.hpp"

#include <cmath>
#include <fstream>
#include <regex>

#include "core/error.hpp"

namespace lmtopo::model {
namespace {

using nlohmann::json;

int block_index(const std::string& text, const std::string& where) {
  static const std::regex digits("[0-9]{1,6}");
  if (!std::regex_match(text, digits)) throw InputError(where + ": expected a block index, got '" + text + "'");
  return std::stoi(text);
}

float finite_value(const json& v, const std::string& where) {
  if (!v.is_number() || !std::isfinite(v.get<double>())) throw InputError(where + ": expected a finite number, got " + v.dump());
  return v.get<float>();
}

}  // namespace

Interventions interventions_from_json(const json& j, const std::string& where) {
  if (!j.is_object()) throw InputError(where + ": expected an object with ffn_set, ffn_add, residual_add, skip_blocks");
  Interventions iv;
  for (auto it = j.begin(); it != j.end(); ++it) {
    const std::string key = it.key(), at = where + ": " + key;
    const json& v = it.value();
    if (key == "ffn_set" || key == "ffn_add") {
      if (!v.is_object()) throw InputError(at + ": expected {\"BLOCK\": [[unit, value], ...]}");
      for (auto b = v.begin(); b != v.end(); ++b) {
        const int block = block_index(b.key(), at);
        if (!b.value().is_array()) throw InputError(at + "." + b.key() + ": expected [[unit, value], ...]");
        for (const auto& uv : b.value()) {
          if (!uv.is_array() || uv.size() != 2 || !uv[0].is_number_integer() || uv[0].get<long long>() < 0)
            throw InputError(at + "." + b.key() + ": expected [unit, value] pairs with a unit index >= 0, got " + uv.dump());
          (key == "ffn_set" ? iv.ffn_set : iv.ffn_add)[block].push_back({uv[0].get<std::int64_t>(), finite_value(uv[1], at)});
        }
      }
    } else if (key == "residual_add") {
      if (!v.is_object()) throw InputError(at + ": expected {\"BLOCK\": [floats]}");
      for (auto b = v.begin(); b != v.end(); ++b) {
        if (!b.value().is_array()) throw InputError(at + "." + b.key() + ": expected a vector of numbers");
        auto& vec = iv.residual_add[block_index(b.key(), at)];
        for (const auto& x : b.value()) vec.push_back(finite_value(x, at + "." + b.key()));
      }
    } else if (key == "skip_blocks") {
      if (!v.is_array()) throw InputError(at + ": expected a list of block indices");
      for (const auto& x : v) {
        if (!x.is_number_integer() || x.get<long long>() < 0) throw InputError(at + ": expected block indices >= 0, got " + x.dump());
        iv.skip_blocks.push_back(x.get<int>());
      }
    } else {
      throw InputError(at + ": unknown field (expected ffn_set, ffn_add, residual_add, skip_blocks)");
    }
  }
  return iv;
}

Interventions read_interventions_file(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw InputError(path + ": cannot read the interventions file");
  json j;
  try {
    j = json::parse(in);
  } catch (const json::exception&) {
    throw InputError(path + ": not valid JSON");
  }
  return interventions_from_json(j, path);
}

json interventions_to_json(const Interventions& iv) {
  json j = json::object();
  for (const auto& [name, edits] : {std::pair{"ffn_set", &iv.ffn_set}, std::pair{"ffn_add", &iv.ffn_add}})
    for (const auto& [block, list] : *edits)
      for (const auto& [unit, value] : list) j[name][std::to_string(block)].push_back({unit, value});
  for (const auto& [block, vec] : iv.residual_add) j["residual_add"][std::to_string(block)] = vec;
  if (!iv.skip_blocks.empty()) j["skip_blocks"] = iv.skip_blocks;
  // Per-row edits are a study's internal probes (their vectors are in its output), not user input.
  for (const auto& [block, edit] : iv.residual_add_at) j["residual_add_at"][std::to_string(block)] = {{"rows", edit.position.size()}};
  return j;
}

void add_skip_blocks(Interventions& iv, const std::string& list, const std::string& option) {
  static const std::regex item("([0-9]{1,6})(?:-([0-9]{1,6}))?");
  std::size_t from = 0;
  while (from <= list.size()) {
    const std::size_t comma = std::min(list.find(',', from), list.size());
    const std::string part = list.substr(from, comma - from);
    std::smatch m;
    if (!std::regex_match(part, m, item)) throw InputError(option + ": expected blocks like 20-27,29, got '" + list + "'");
    const int a = std::stoi(m[1]), b = m[2].matched ? std::stoi(m[2]) : a;
    if (b < a) throw InputError(option + ": range " + part + " runs backwards");
    for (int i = a; i <= b; ++i) iv.skip_blocks.push_back(i);
    from = comma + 1;
  }
}

void add_ffn_edit(Interventions& iv, const std::string& edit, bool set, const std::string& option) {
  static const std::regex form("([0-9]{1,6}):([0-9]{1,9})=(.+)");
  std::smatch m;
  if (!std::regex_match(edit, m, form)) throw InputError(option + ": expected LAYER:UNIT=VALUE, got '" + edit + "'");
  char* end = nullptr;
  const std::string value = m[3];
  const double v = std::strtod(value.c_str(), &end);
  if (*end != '\0' || !std::isfinite(v)) throw InputError(option + ": value '" + value + "' is not a finite number");
  (set ? iv.ffn_set : iv.ffn_add)[std::stoi(m[1])].push_back({std::stoll(m[2]), static_cast<float>(v)});
}

}  // namespace lmtopo::model
