// Interventions (model/transformer.hpp) as users give them: a JSON file
//   {"ffn_set": {"3": [[17, 0.0]]}, "ffn_add": {"3": [[17, 1.0]]}, "residual_add": {"5": [floats]},
//    "skip_blocks": [20, 21]}
// and the command-line forms --skip-blocks 20-27,29 and --ffn-set / --ffn-add LAYER:UNIT=VALUE.
// Types are checked here (errors name the file or option and the field); ranges against the model
// when it runs.
#pragma once
#include <nlohmann/json.hpp>
#include <string>

#include "model/transformer.hpp"

namespace lmtopo::model {

// `where` names the source in errors ("units.json").
Interventions interventions_from_json(const nlohmann::json& j, const std::string& where);
Interventions read_interventions_file(const std::string& path);
nlohmann::json interventions_to_json(const Interventions& iv);

// "20-27,29" -> {20, ..., 27, 29}, appended to iv.skip_blocks.
void add_skip_blocks(Interventions& iv, const std::string& list, const std::string& option);
// "LAYER:UNIT=VALUE", appended to iv.ffn_set (set) or iv.ffn_add.
void add_ffn_edit(Interventions& iv, const std::string& edit, bool set, const std::string& option);

}  // namespace lmtopo::model
