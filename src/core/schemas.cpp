#include "core/schemas.hpp"

#include <map>

#include "core/error.hpp"

namespace lmtopo::core {
namespace {
#include "embedded_schemas.inc"  // generated: kEmbeddedSchemas, {file name, text} pairs

const std::map<std::string, nlohmann::json>& all() {
  static const std::map<std::string, nlohmann::json> schemas = [] {
    std::map<std::string, nlohmann::json> m;
    for (const auto& [name, text] : kEmbeddedSchemas) m[name] = nlohmann::json::parse(text);
    return m;
  }();
  return schemas;
}
}  // namespace

const nlohmann::json& job_schema() { return all().at("job.schema.json"); }

const std::string& embedded_template(const std::string& name) {
  static const std::map<std::string, std::string> templates = [] {
    std::map<std::string, std::string> m;
    for (const auto& [file, text] : kEmbeddedTemplates) m[file] = text;
    return m;
  }();
  const auto it = templates.find(name);
  if (it == templates.end()) throw RuntimeFailure("no embedded template " + name);
  return it->second;
}

const nlohmann::json& layout_schema(const std::string& kind) {
  for (const auto& [name, schema] : all())
    if (schema.contains("kind") && schema["kind"] == kind) return schema;
  std::string known;
  for (const auto& k : layout_kinds()) known += (known.empty() ? "" : ", ") + k;
  throw InputError("unknown output kind '" + kind + "' (known: " + known + ")");
}

std::vector<std::string> layout_kinds() {
  std::vector<std::string> out;
  for (const auto& [name, schema] : all())
    if (schema.contains("kind")) out.push_back(schema["kind"].get<std::string>());
  return out;
}

}  // namespace lmtopo::core
