#include "io/h5_layout.hpp"

#include <algorithm>
#include <regex>

#include "core/error.hpp"
#include "core/schemas.hpp"
#include "io/h5store.hpp"

namespace lmtopo::io {

std::optional<LayoutError> check_layout(const std::string& path) {
  H5Input in(path);
  for (const char* attr : kProvenanceAttributes)
    if (!in.has_attribute("/", attr)) return LayoutError{std::string("/@") + attr, "missing root attribute (provenance)"};
  const std::string kind = in.string_attribute("/", "lmtopo_schema");
  const auto& schema = core::layout_schema(kind);
  if (!nlohmann::json::accept(in.string_attribute("/", "config_json")))
    return LayoutError{"/@config_json", "expected the effective config as JSON"};

  auto check_dataset = [&](const DatasetInfo& info, const nlohmann::json& spec) -> std::optional<LayoutError> {
    const auto& dtypes = spec["dtype"];
    if (std::find(dtypes.begin(), dtypes.end(), info.dtype) == dtypes.end())
      return LayoutError{info.path, "expected dtype " + dtypes.dump() + ", got " + info.dtype};
    if (spec.contains("rank") && info.shape.size() != spec["rank"].get<std::size_t>())
      return LayoutError{info.path, "expected rank " + spec["rank"].dump() + ", got " + std::to_string(info.shape.size())};
    for (const char* rel : {"rows_as", "axis1_as"}) {
      if (!spec.contains(rel)) continue;
      const std::string other = spec[rel].get<std::string>();
      if (!in.has_dataset(other)) return LayoutError{other, "missing dataset"};
      const auto o = in.dataset(other);
      const std::size_t axis = std::string(rel) == "rows_as" ? 0 : 1;
      if (info.shape.size() <= axis || o.shape.empty() || info.shape[axis] != o.shape[0])
        return LayoutError{info.path, "expected axis " + std::to_string(axis) + " to have the length of " + other};
    }
    if (spec.contains("attributes"))
      for (const auto& a : spec["attributes"])
        if (!info.attributes.count(a.get<std::string>()))
          return LayoutError{info.path + "@" + a.get<std::string>(), "missing attribute"};
    return std::nullopt;
  };

  // Root attributes and datasets of the schema, or of one variant of it.
  auto check_part = [&](const nlohmann::json& part) -> std::optional<LayoutError> {
    if (part.contains("root_attributes"))
      for (const auto& a : part["root_attributes"])
        if (!in.has_attribute("/", a.get<std::string>())) return LayoutError{"/@" + a.get<std::string>(), "missing root attribute"};
    if (part.contains("datasets"))
      for (const auto& spec : part["datasets"]) {
        const std::string p = spec["path"].get<std::string>();
        if (!in.has_dataset(p)) {
          if (spec.value("optional", false)) continue;  // a part the run may leave out (checked when present)
          return LayoutError{p, "missing dataset"};
        }
        if (auto e = check_dataset(in.dataset(p), spec)) return e;
      }
    if (part.contains("dataset_patterns")) {  // datasets named by a pattern (one per hook, sheet, ...)
      const auto all = in.datasets();
      for (const auto& spec : part["dataset_patterns"]) {
        const std::regex re(spec["pattern"].get<std::string>());
        long long count = 0;
        for (const auto& info : all)
          if (std::regex_match(info.path, re)) {
            ++count;
            if (auto e = check_dataset(info, spec)) return e;
          }
        if (count < spec.value("min_count", 0))
          return LayoutError{spec["pattern"].get<std::string>(), "expected at least " + spec["min_count"].dump() + " dataset(s) matching"};
      }
    }
    return std::nullopt;
  };
  if (auto e = check_part(schema)) return e;
  // A kind whose content depends on a root attribute (neurons/1: the study) lists its variants.
  if (schema.contains("variant_attribute")) {
    const std::string attr = schema["variant_attribute"].get<std::string>();
    if (!in.has_attribute("/", attr)) return LayoutError{"/@" + attr, "missing root attribute"};
    const std::string variant = in.string_attribute("/", attr);
    if (!schema["variants"].contains(variant)) {
      std::string names;
      for (const auto& [name, part] : schema["variants"].items()) names += (names.empty() ? "" : ", ") + name;
      return LayoutError{"/@" + attr, "unknown value '" + variant + "' (expected one of " + names + ")"};
    }
    if (auto e = check_part(schema["variants"][variant])) return e;
  }
  if (schema.contains("attributes"))
    for (const auto& a : schema["attributes"])
      if (!in.has_attribute(a["object"].get<std::string>(), a["name"].get<std::string>()))
        return LayoutError{a["object"].get<std::string>() + "@" + a["name"].get<std::string>(), "missing attribute"};
  return std::nullopt;
}

}  // namespace lmtopo::io
