// A validator for the subset of JSON Schema (2020-12) that lmtopo's schemas use: type, enum,
// pattern, minLength, minimum/maximum/exclusiveMinimum, minItems, items, required, properties,
// additionalProperties, oneOf, $ref to local $defs. The schema file is the single source of truth;
// the tests check that Python's `jsonschema` agrees with this validator.
#pragma once
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

namespace lmtopo::core {

struct SchemaError {
  std::string path;     // e.g. models[0].checkpoints.dir ("" for the document itself)
  std::string message;  // what was expected, and what was found
};

std::optional<SchemaError> validate_json(const nlohmann::json& instance, const nlohmann::json& schema);

// Fills in the schema's "default" values for absent properties of objects that are present.
void apply_defaults(nlohmann::json& instance, const nlohmann::json& schema);

// The closest candidate by edit distance, if it is close enough to be a likely typo.
std::optional<std::string> did_you_mean(const std::string& word, const std::vector<std::string>& candidates);

}  // namespace lmtopo::core
