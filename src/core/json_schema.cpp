#include "core/json_schema.hpp"

#include <algorithm>
#include <cmath>
#include <regex>

namespace lmtopo::core {
namespace {

using json = nlohmann::json;

const json& resolve(const json& schema, const json& root) {
  if (schema.is_object() && schema.contains("$ref")) {
    const std::string ref = schema["$ref"].get<std::string>();
    const std::string prefix = "#/$defs/";
    if (ref.rfind(prefix, 0) != 0) throw std::logic_error("unsupported $ref " + ref);
    return root.at("$defs").at(ref.substr(prefix.size()));
  }
  return schema;
}

std::string join(const std::string& path, const std::string& key) { return path.empty() ? key : path + "." + key; }

std::string type_of(const json& v) {
  if (v.is_null()) return "null";
  if (v.is_boolean()) return "boolean";
  if (v.is_number_integer() || v.is_number_unsigned()) return "integer";
  if (v.is_number_float()) return "number";
  if (v.is_string()) return "string";
  if (v.is_array()) return "array";
  return "object";
}

bool has_type(const json& v, const std::string& type) {
  if (type == "number") return v.is_number();
  if (type == "integer")
    return v.is_number_integer() || v.is_number_unsigned() ||
           (v.is_number_float() && std::floor(v.get<double>()) == v.get<double>());
  return type_of(v) == type;
}

std::string article(const std::string& type) {
  return (type == "integer" || type == "object" || type == "array") ? "an " + type : "a " + type;
}

std::string shown(const json& v) {
  std::string s = v.dump();
  return s.size() > 60 ? s.substr(0, 57) + "..." : s;
}

std::size_t code_points(const std::string& s) {
  return static_cast<std::size_t>(std::count_if(s.begin(), s.end(), [](char c) { return (c & 0xC0) != 0x80; }));
}

std::optional<SchemaError> check(const json& v, const json& schema_in, const json& root, const std::string& path);

std::optional<SchemaError> check_keywords(const json& v, const json& s, const json& root, const std::string& path) {
  auto fail = [&](const std::string& msg) { return std::optional<SchemaError>(SchemaError{path, msg}); };
  if (s.contains("type")) {
    const std::string t = s["type"].get<std::string>();
    if (!has_type(v, t)) return fail("expected " + article(t) + ", got " + article(type_of(v)) + " " + shown(v));
  }
  if (s.contains("enum")) {
    bool found = false;
    std::string options;
    for (const auto& e : s["enum"]) {
      found = found || e == v;
      options += (options.empty() ? "" : ", ") + e.dump();
    }
    if (!found) return fail("expected one of " + options + ", got " + shown(v));
  }
  if (v.is_string()) {
    const std::string str = v.get<std::string>();
    if (s.contains("minLength") && code_points(str) < s["minLength"].get<std::size_t>())
      return fail("expected at least " + std::to_string(s["minLength"].get<std::size_t>()) + " characters");
    if (s.contains("pattern") && !std::regex_search(str, std::regex(s["pattern"].get<std::string>())))
      return fail("expected a string matching " + s["pattern"].get<std::string>() + ", got " + shown(v));
  }
  if (v.is_number()) {
    const double x = v.get<double>();
    if (s.contains("minimum") && x < s["minimum"].get<double>())
      return fail("expected a value >= " + s["minimum"].dump() + ", got " + shown(v));
    if (s.contains("exclusiveMinimum") && x <= s["exclusiveMinimum"].get<double>())
      return fail("expected a value > " + s["exclusiveMinimum"].dump() + ", got " + shown(v));
    if (s.contains("maximum") && x > s["maximum"].get<double>())
      return fail("expected a value <= " + s["maximum"].dump() + ", got " + shown(v));
    if (s.contains("exclusiveMaximum") && x >= s["exclusiveMaximum"].get<double>())
      return fail("expected a value < " + s["exclusiveMaximum"].dump() + ", got " + shown(v));
  }
  if (v.is_array()) {
    if (s.contains("minItems") && v.size() < s["minItems"].get<std::size_t>())
      return fail("expected at least " + std::to_string(s["minItems"].get<std::size_t>()) + " item(s)");
    if (s.value("uniqueItems", false))
      for (std::size_t i = 0; i < v.size(); ++i)
        for (std::size_t j = i + 1; j < v.size(); ++j)
          if (v[i] == v[j]) return fail("expected distinct items, got " + shown(v[i]) + " twice");
    if (s.contains("items"))
      for (std::size_t i = 0; i < v.size(); ++i)
        if (auto e = check(v[i], s["items"], root, path + "[" + std::to_string(i) + "]")) return e;
  }
  if (v.is_object()) {
    if (s.contains("required"))
      for (const auto& r : s["required"]) {
        const std::string key = r.get<std::string>();
        if (!v.contains(key)) return std::optional<SchemaError>(SchemaError{join(path, key), "missing required field"});
      }
    const json empty = json::object();
    const json& props = s.contains("properties") ? s["properties"] : empty;
    for (auto it = v.begin(); it != v.end(); ++it) {
      const std::string child = join(path, it.key());
      if (props.contains(it.key())) {
        if (auto e = check(it.value(), props[it.key()], root, child)) return e;
      } else if (s.contains("additionalProperties")) {
        const json& extra = s["additionalProperties"];
        if (extra.is_boolean() && !extra.get<bool>()) {
          std::vector<std::string> known;
          for (auto p = props.begin(); p != props.end(); ++p) known.push_back(p.key());
          std::string msg = "unknown field";
          if (auto guess = did_you_mean(it.key(), known)) msg += " (did you mean '" + *guess + "'?)";
          else {
            std::string list;
            for (const auto& k : known) list += (list.empty() ? "" : ", ") + k;
            msg += " (expected one of: " + list + ")";
          }
          return std::optional<SchemaError>(SchemaError{child, msg});
        }
        if (extra.is_object())
          if (auto e = check(it.value(), extra, root, child)) return e;
      }
    }
  }
  if (s.contains("oneOf")) {
    std::vector<SchemaError> errors;
    std::vector<bool> type_matches;
    int valid = 0;
    for (const auto& branch : s["oneOf"]) {
      auto e = check(v, branch, root, path);
      const json& b = resolve(branch, root);
      type_matches.push_back(!b.contains("type") || has_type(v, b["type"].get<std::string>()));
      if (!e) ++valid;
      else errors.push_back(*e);
    }
    if (valid == 1) return std::nullopt;
    if (valid > 1) return fail("ambiguous value matches several alternatives");
    // Report the error of the only alternative of the right type, which is the helpful one.
    if (std::count(type_matches.begin(), type_matches.end(), true) == 1)
      return errors[static_cast<std::size_t>(std::find(type_matches.begin(), type_matches.end(), true) - type_matches.begin())];
    std::string kinds;
    for (const auto& branch : s["oneOf"]) {
      const json& b = resolve(branch, root);
      kinds += (kinds.empty() ? "" : " or ") + (b.contains("type") ? article(b["type"].get<std::string>()) : std::string("a value"));
    }
    return fail("expected " + kinds + ", got " + article(type_of(v)) + " " + shown(v));
  }
  return std::nullopt;
}

std::optional<SchemaError> check(const json& v, const json& schema_in, const json& root, const std::string& path) {
  if (schema_in.is_object() && schema_in.contains("$ref")) {
    if (auto e = check_keywords(v, resolve(schema_in, root), root, path)) return e;
    json rest = schema_in;
    rest.erase("$ref");
    return check_keywords(v, rest, root, path);
  }
  return check_keywords(v, schema_in, root, path);
}

void defaults(json& v, const json& schema_in, const json& root) {
  const json& s = resolve(schema_in, root);
  if (s.contains("oneOf")) {
    for (const auto& branch : s["oneOf"])
      if (!check(v, branch, root, "")) {
        defaults(v, branch, root);
        break;
      }
  }
  if (v.is_object() && s.contains("properties")) {
    for (auto p = s["properties"].begin(); p != s["properties"].end(); ++p) {
      const json& ps = resolve(p.value(), root);
      if (!v.contains(p.key())) {
        if (p.value().contains("default")) v[p.key()] = p.value()["default"];
        else if (ps.contains("default")) v[p.key()] = ps["default"];
      }
      if (v.contains(p.key())) defaults(v[p.key()], p.value(), root);
    }
  }
  if (v.is_array() && s.contains("items"))
    for (auto& item : v) defaults(item, s["items"], root);
}

std::size_t edit_distance(const std::string& a, const std::string& b) {
  std::vector<std::size_t> prev(b.size() + 1), cur(b.size() + 1);
  for (std::size_t j = 0; j <= b.size(); ++j) prev[j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i) {
    cur[0] = i;
    for (std::size_t j = 1; j <= b.size(); ++j)
      cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1)});
    prev.swap(cur);
  }
  return prev[b.size()];
}

}  // namespace

std::optional<SchemaError> validate_json(const nlohmann::json& instance, const nlohmann::json& schema) {
  return check(instance, schema, schema, "");
}

void apply_defaults(nlohmann::json& instance, const nlohmann::json& schema) { defaults(instance, schema, schema); }

std::optional<std::string> did_you_mean(const std::string& word, const std::vector<std::string>& candidates) {
  std::optional<std::string> best;
  std::size_t best_d = std::max<std::size_t>(2, word.size() / 3) + 1;
  for (const auto& c : candidates) {
    // A shortened or lengthened name (max_dimension for max_dim) counts as a near miss.
    const bool prefix = std::min(word.size(), c.size()) >= 3 &&
                        (word.rfind(c, 0) == 0 || c.rfind(word, 0) == 0);
    const std::size_t d = prefix ? 1 : edit_distance(word, c);
    if (d < best_d) best_d = d, best = c;
  }
  return best;
}

}  // namespace lmtopo::core
