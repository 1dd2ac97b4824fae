#include "core/jobspec.hpp"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <filesystem>
#include <regex>
#include <set>
#include <sstream>

#include "core/error.hpp"
#include "core/hashing.hpp"
#include "core/json_schema.hpp"
#include "core/provenance.hpp"
#include "core/utf8.hpp"
#include "core/schemas.hpp"

namespace fs = std::filesystem;

namespace lmtopo::core {
namespace {

using json = nlohmann::json;

json scalar_to_json(const YAML::Node& node) {
  const std::string& text = node.Scalar();
  if (node.Tag() == "!") return text;  // quoted: always a string
  static const std::regex int_re("^[-+]?[0-9]+$");
  static const std::regex float_re("^[-+]?(\\.[0-9]+|[0-9]+(\\.[0-9]*)?)([eE][-+]?[0-9]+)?$");
  if (text.empty() || text == "~" || text == "null" || text == "Null" || text == "NULL") return nullptr;
  if (text == "true" || text == "True" || text == "TRUE") return true;
  if (text == "false" || text == "False" || text == "FALSE") return false;
  if (std::regex_match(text, int_re)) {
    try {
      return std::stoll(text);
    } catch (const std::out_of_range&) {
      return text;
    }
  }
  if (std::regex_match(text, float_re)) return std::stod(text);
  return text;
}

// YAML may carry any bytes; the spec (and so every output's config_json) must be UTF-8.
void require_utf8(const YAML::Node& node, const std::string& text, const std::string& file) {
  if (const auto bad = first_invalid_utf8(text); bad != std::string::npos)
    throw InputError(file + ":" + std::to_string(node.Mark().line + 1) + ":" + std::to_string(node.Mark().column + 1) +
                     ": not valid UTF-8 (byte " + std::to_string(bad) + " of the value)");
}

json node_to_json(const YAML::Node& node, const std::string& file) {
  switch (node.Type()) {
    case YAML::NodeType::Null:
    case YAML::NodeType::Undefined:
      return nullptr;
    case YAML::NodeType::Scalar:
      require_utf8(node, node.Scalar(), file);
      return scalar_to_json(node);
    case YAML::NodeType::Sequence: {
      json arr = json::array();
      for (const auto& item : node) arr.push_back(node_to_json(item, file));
      return arr;
    }
    case YAML::NodeType::Map: {
      json obj = json::object();
      for (const auto& kv : node) {
        if (!kv.first.IsScalar())
          throw InputError(file + ":" + std::to_string(kv.first.Mark().line + 1) + ": expected a plain mapping key");
        const std::string key = kv.first.Scalar();
        require_utf8(kv.first, key, file);
        if (obj.contains(key))
          throw InputError(file + ":" + std::to_string(kv.first.Mark().line + 1) + ": duplicate key '" + key + "'");
        obj[key] = node_to_json(kv.second, file);
      }
      return obj;
    }
  }
  return nullptr;
}

std::string resolve_path(const std::string& base, const std::string& p) {
  if (p.empty() || fs::path(p).is_absolute()) return p;
  return (fs::path(base) / p).lexically_normal().string();
}

[[noreturn]] void field_error(const std::string& file, const std::string& path, const std::string& what) {
  throw InputError(file + ": " + path + ": " + what);
}

std::vector<CheckpointRef> resolve_checkpoints(const json& spec, const std::string& base, const std::string& file,
                                               const std::string& path) {
  std::vector<CheckpointRef> out;
  if (spec.is_array()) {
    for (std::size_t i = 0; i < spec.size(); ++i) {
      CheckpointRef ref;
      ref.dir = resolve_path(base, spec[i].get<std::string>());
      ref.label = fs::path(ref.dir).filename().string();
      if (!fs::is_directory(ref.dir))
        field_error(file, path + "[" + std::to_string(i) + "]", "expected an existing checkpoint directory, '" + ref.dir + "' does not exist");
      out.push_back(ref);
    }
    return out;
  }
  const std::string dir = resolve_path(base, spec["dir"].get<std::string>());
  if (!fs::is_directory(dir)) field_error(file, path + ".dir", "expected an existing directory, '" + dir + "' does not exist");
  const std::string tmpl = spec["template"].get<std::string>();
  const auto brace = tmpl.find("{N}");
  const std::string prefix = tmpl.substr(0, brace), suffix = tmpl.substr(brace + 3);
  auto name_of = [&](long long n) { return prefix + std::to_string(n) + suffix; };
  if (spec["steps"].is_string()) {
    for (const auto& entry : fs::directory_iterator(dir)) {
      const std::string name = entry.path().filename().string();
      if (!entry.is_directory() || name.size() <= prefix.size() + suffix.size()) continue;
      if (name.compare(0, prefix.size(), prefix) != 0 || name.compare(name.size() - suffix.size(), suffix.size(), suffix) != 0) continue;
      const std::string digits = name.substr(prefix.size(), name.size() - prefix.size() - suffix.size());
      if (digits.empty() || !std::all_of(digits.begin(), digits.end(), ::isdigit)) continue;
      if (digits.size() > 18) field_error(file, path + ".dir", "step number of '" + name + "' is out of range (at most 18 digits)");
      out.push_back({name, entry.path().string(), std::stoll(digits)});
    }
    std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.step < b.step; });
    if (out.empty()) field_error(file, path + ".dir", "expected folders matching '" + tmpl + "' in '" + dir + "', found none");
  } else {
    const auto& steps = spec["steps"];
    for (std::size_t i = 0; i < steps.size(); ++i) {
      const long long n = steps[i].get<long long>();
      const std::string d = (fs::path(dir) / name_of(n)).string();
      if (!fs::is_directory(d))
        field_error(file, path + ".steps[" + std::to_string(i) + "]", "expected checkpoint folder '" + d + "' to exist");
      out.push_back({name_of(n), d, n});
    }
  }
  return out;
}

}  // namespace

json yaml_file_to_json(const std::string& path) {
  if (!fs::exists(path)) throw InputError(path + ": no such job spec");
  YAML::Node root;
  try {
    root = YAML::LoadFile(path);
  } catch (const YAML::ParserException& e) {
    throw InputError(path + ":" + std::to_string(e.mark.line + 1) + ":" + std::to_string(e.mark.column + 1) +
                     ": malformed YAML: " + e.msg);
  } catch (const YAML::BadFile&) {
    throw InputError(path + ": cannot read the job spec");
  }
  return node_to_json(root, path);
}

namespace {

// neurons.sensitive_directions.sae_decoders: one existing file per studied block for every model when
// the family sae is listed (none otherwise), each resolved against the spec's folder in spec.config.
void check_sae_decoders(JobSpec& spec, const std::string& path) {
  json& sd = spec.config["neurons"]["sensitive_directions"];
  const bool sae = std::count(sd["families"].begin(), sd["families"].end(), "sae") > 0;
  const std::string field = "neurons.sensitive_directions.sae_decoders";
  const std::size_t blocks = sd["blocks"].empty() ? 1 : sd["blocks"].size();
  const bool listed = std::count(spec.config["neurons"]["studies"].begin(), spec.config["neurons"]["studies"].end(), "sensitive_directions") > 0;
  if (!sae || !listed) {
    if (!sd["sae_decoders"].empty()) field_error(path, field, "given, but family sae of study sensitive_directions is not run");
    return;
  }
  std::set<std::string> models;
  for (const auto& m : spec.models) {
    models.insert(m.name);
    if (!sd["sae_decoders"].contains(m.name)) field_error(path, field + "." + m.name, "family sae needs this model's decoders");
  }
  for (auto& [name, files] : sd["sae_decoders"].items()) {
    if (!models.count(name)) field_error(path, field + "." + name, "no model of this name");
    if (files.size() != blocks)
      field_error(path, field + "." + name, "expected one decoder per studied block (" + std::to_string(blocks) + "), got " + std::to_string(files.size()));
    for (std::size_t i = 0; i < files.size(); ++i) {
      files[i] = resolve_path(spec.base_dir, files[i].get<std::string>());
      if (!fs::exists(files[i].get<std::string>()))
        field_error(path, field + "." + name + "[" + std::to_string(i) + "]", "'" + files[i].get<std::string>() + "' does not exist");
    }
  }
}

// aggregate reads the zigzag outputs of dimension `dim`; imported barcodes exist and are named apart
// from the study's models (resolved against the spec's folder in spec.config).
void check_aggregate(JobSpec& spec, const std::string& path) {
  json& a = spec.config["aggregate"];
  if (!spec.config.contains("zigzag") || !spec.config.contains("extract"))
    field_error(path, "aggregate", "needs extract and zigzag sections (it reads the zigzag outputs)");
  const auto& dims = spec.config["zigzag"]["homology_dims"];
  if (std::find(dims.begin(), dims.end(), a["dim"]) == dims.end())
    field_error(path, "aggregate.dim", "homology dimension " + a["dim"].dump() + " is not in zigzag.homology_dims " + dims.dump());
  for (std::size_t i = 0; i < a["curve_dims"].size(); ++i)
    if (std::find(dims.begin(), dims.end(), a["curve_dims"][i]) == dims.end())
      field_error(path, "aggregate.curve_dims[" + std::to_string(i) + "]",
                  "homology dimension " + a["curve_dims"][i].dump() + " is not in zigzag.homology_dims " + dims.dump());
  std::set<std::string> names;
  for (const auto& m : spec.models) names.insert(m.name);
  for (std::size_t i = 0; i < a["barcodes"].size(); ++i) {
    json& b = a["barcodes"][i];
    const std::string field = "aggregate.barcodes[" + std::to_string(i) + "]";
    if (!names.insert(b["model"].get<std::string>()).second)
      field_error(path, field + ".model", "'" + b["model"].get<std::string>() + "' is already a model of the study or an earlier barcode");
    b["path"] = resolve_path(spec.base_dir, b["path"].get<std::string>());
    if (!fs::exists(b["path"].get<std::string>())) field_error(path, field + ".path", "'" + b["path"].get<std::string>() + "' does not exist");
  }
}

// neurons.spatial: the contrast's two languages, different and in data.languages, exactly when the study
// is listed (options without the study would be ignored).
void check_spatial(const JobSpec& spec, const std::string& path) {
  const json& n = spec.config["neurons"];
  const bool listed = std::count(n["studies"].begin(), n["studies"].end(), "spatial") > 0;
  const bool given = spec.written["neurons"].contains("spatial");
  if (!listed) {
    if (given) field_error(path, "neurons.spatial.contrast", "spatial options given but the study is not in neurons.studies");
    return;
  }
  if (!n.contains("spatial") || !n["spatial"].contains("contrast"))
    field_error(path, "neurons.spatial.contrast", "the spatial study needs the two languages of its t-maps, e.g. [en, de]");
  const json& c = n["spatial"]["contrast"];
  if (c.size() != 2 || c[0] == c[1]) field_error(path, "neurons.spatial.contrast", "expected two different groups (a language or LANGUAGE:scrambled)");
  const auto& langs = spec.config["data"]["languages"];
  for (std::size_t i = 0; i < 2; ++i) {
    const std::string language = c[i].get<std::string>().substr(0, c[i].get<std::string>().find(':'));  // the schema checks the suffix
    if (std::find(langs.begin(), langs.end(), language) == langs.end())
      field_error(path, "neurons.spatial.contrast[" + std::to_string(i) + "]", "'" + language + "' is not in data.languages " + langs.dump());
  }
}

// prune reads the zigzag S̄ and the layer_layer sweep (angular distance, block influence) of its hook.
void check_prune(const JobSpec& spec, const std::string& path) {
  const json& c = spec.config;
  const json& p = c["prune"];
  if (!c.contains("extract") || !c.contains("zigzag") || !c.contains("sweep"))
    field_error(path, "prune", "needs extract, zigzag and sweep sections (it reads the S̄ curve and the layer_layer sweep)");
  const auto has = [](const json& list, const json& v) { return std::find(list.begin(), list.end(), v) != list.end(); };
  if (!has(c["extract"]["hooks"], p["hook"])) field_error(path, "prune.hook", p["hook"].dump() + " is not in extract.hooks " + c["extract"]["hooks"].dump());
  if (!has(c["zigzag"]["homology_dims"], p["dim"]))
    field_error(path, "prune.dim", "homology dimension " + p["dim"].dump() + " is not in zigzag.homology_dims " + c["zigzag"]["homology_dims"].dump());
  if (!has(c["sweep"]["pairs"], "layer_layer")) field_error(path, "sweep.pairs", "prune needs layer_layer");
  for (const char* metric : {"angular_distance", "block_influence"})
    if (!has(c["sweep"]["metrics"], metric)) field_error(path, "sweep.metrics", std::string("prune needs ") + metric);
}

// eval's conditions: names unique (they name files), skip_blocks ranges forward, interventions files
// existing (resolved against the spec's folder in spec.config). Blocks and units are checked against
// each model when its item starts.
void check_eval(JobSpec& spec, const std::string& path) {
  json& conditions = spec.config["eval"]["conditions"];
  std::set<std::string> names;
  for (std::size_t i = 0; i < conditions.size(); ++i) {
    json& c = conditions[i];
    const std::string field = "eval.conditions[" + std::to_string(i) + "]";
    if (!names.insert(c["name"].get<std::string>()).second) field_error(path, field + ".name", "'" + c["name"].get<std::string>() + "' is listed twice");
    if (c.contains("skip_blocks")) {
      std::stringstream list(c["skip_blocks"].get<std::string>());
      for (std::string part; std::getline(list, part, ',');)
        if (const auto dash = part.find('-'); dash != std::string::npos && std::stol(part.substr(dash + 1)) < std::stol(part.substr(0, dash)))
          field_error(path, field + ".skip_blocks", "range " + part + " runs backwards");
    }
    if (c.contains("interventions")) {
      c["interventions"] = resolve_path(spec.base_dir, c["interventions"].get<std::string>());
      if (!fs::exists(c["interventions"].get<std::string>()))
        field_error(path, field + ".interventions", "'" + c["interventions"].get<std::string>() + "' does not exist");
    }
  }
}

// A from_train model's train section: the study's (defaults applied) with the model's written fields
// over it (a JSON merge patch, so spatial: {alpha: 1} keeps the study's other spatial fields).
json model_train_section(const json& study_train, const json& written_model, const std::string& file, const std::string& p) {
  json t = study_train;
  if (written_model.contains("train")) t.merge_patch(written_model["train"]);
  apply_defaults(t, job_schema()["$defs"]["train"]);  // a spatial section only the model has
  if (t.contains("spatial")) {
    const auto sheets = t["spatial"]["sheets"].get<std::vector<std::string>>();
    if (std::set<std::string>(sheets.begin(), sheets.end()).size() != sheets.size())
      field_error(file, (written_model.contains("train") ? p + ".train" : std::string("train")) + ".spatial.sheets", "a hook is listed twice");
  }
  return t;
}

}  // namespace

JobSpec load_job_spec(const std::string& path) {
  JobSpec spec;
  spec.file = path;
  spec.base_dir = fs::absolute(path).parent_path().string();
  json doc = yaml_file_to_json(path);
  if (!doc.is_object()) throw InputError(path + ": expected a mapping at the top level of the job spec");
  const json& schema = job_schema();
  if (auto e = validate_json(doc, schema)) throw InputError(path + ": " + (e->path.empty() ? "<document>" : e->path) + ": " + e->message);
  spec.written = doc;
  apply_defaults(doc, schema);
  spec.config = doc;
  spec.study = doc["study"].get<std::string>();
  spec.output = resolve_path(spec.base_dir, doc["output"].get<std::string>());

  // Semantic checks the schema cannot express.
  std::set<std::string> names;
  const json& models = doc["models"];
  for (std::size_t i = 0; i < models.size(); ++i) {
    const std::string p = "models[" + std::to_string(i) + "]";
    ModelSpec m;
    m.name = models[i]["name"].get<std::string>();
    if (!names.insert(m.name).second) field_error(path, p + ".name", "duplicate model name '" + m.name + "'");
    m.architecture = models[i].value("architecture", "");
    m.from_train = models[i].value("from_train", false);
    if (m.from_train == models[i].contains("checkpoints"))
      field_error(path, p + (m.from_train ? ".checkpoints" : ".from_train"),
                  "expected exactly one of checkpoints or from_train: true");
    if (m.from_train && !doc.contains("train"))
      field_error(path, p + ".from_train", "needs a train section in the job spec");
    if (!m.from_train) m.checkpoints = resolve_checkpoints(models[i]["checkpoints"], spec.base_dir, path, p + ".checkpoints");
    if (!m.from_train && models[i].contains("train")) field_error(path, p + ".train", "only a from_train model is trained");
    if (m.from_train) m.train = model_train_section(doc["train"], spec.written["models"][i], path, p);
    spec.models.push_back(std::move(m));
  }
  const json& data = doc["data"];
  spec.data.source = data["source"].get<std::string>();
  spec.data.path = resolve_path(spec.base_dir, data["path"].get<std::string>());
  if (spec.data.source == "jsonl" && !data.contains("path"))
    field_error(path, "data.path", "missing required field (the JSONL corpus) for source jsonl");
  if (spec.data.source == "jsonl" && spec.data.path == "/usr/share/locale")
    field_error(path, "data.path", "expected a JSONL corpus file for source jsonl");
  if (!fs::exists(spec.data.path)) field_error(path, "data.path", "expected an existing path, '" + spec.data.path + "' does not exist");
  spec.data.domains = data["domains"].get<std::vector<std::string>>();
  spec.data.languages = data["languages"].get<std::vector<std::string>>();
  std::set<std::string> langs;
  for (std::size_t i = 0; i < spec.data.languages.size(); ++i)
    if (!langs.insert(spec.data.languages[i]).second)
      field_error(path, "data.languages[" + std::to_string(i) + "]", "duplicate language '" + spec.data.languages[i] + "'");
  spec.data.prompts = data["prompts"].get<long long>();
  spec.data.seed = data["seed"].get<long long>();
  spec.data.min_chars = data["min_chars"].get<long long>();
  spec.data.max_chars = data["max_chars"].get<long long>();
  if (spec.data.max_chars < spec.data.min_chars)
    field_error(path, "data.max_chars", "expected a value >= data.min_chars (" + std::to_string(spec.data.min_chars) + ")");
  if (doc.contains("zigzag")) {
    const int max_dim = doc["zigzag"]["max_dim"].get<int>();
    const auto& dims = doc["zigzag"]["homology_dims"];
    for (std::size_t i = 0; i < dims.size(); ++i)
      if (dims[i].get<int>() >= max_dim)
        field_error(path, "zigzag.homology_dims[" + std::to_string(i) + "]",
                    "expected a dimension < zigzag.max_dim (" + std::to_string(max_dim) +
                        "): H_p needs simplices of dimension p+1");
  }
  if (doc.contains("sweep")) {
    const json& sw = doc["sweep"];
    for (std::size_t i = 0; i < sw["bootstrap_metrics"].size(); ++i)
      if (std::find(sw["metrics"].begin(), sw["metrics"].end(), sw["bootstrap_metrics"][i]) == sw["metrics"].end())
        field_error(path, "sweep.bootstrap_metrics[" + std::to_string(i) + "]", sw["bootstrap_metrics"][i].dump() + " is not in sweep.metrics " + sw["metrics"].dump());
    if (!sw["bootstrap_metrics"].empty() && sw["bootstrap"].get<int>() == 0)
      field_error(path, "sweep.bootstrap_metrics", "needs sweep.bootstrap > 0 (the number of draws)");
  }
  if (doc.contains("sweep") && doc["sweep"]["bootstrap"].get<int>() > 0 && doc["sweep"]["checkpoint_block"].get<int>() > 0)
    field_error(path, "sweep.bootstrap", "not with sweep.checkpoint_block > 0 (a blocked checkpoint sweep has no intervals)");
  if (doc.contains("extract") && doc["extract"]["add_bos"].get<bool>() && spec.written["extract"].contains("special_tokens") &&
      doc["extract"]["special_tokens"] != "bos")
    field_error(path, "extract.add_bos", "contradicts extract.special_tokens (add_bos: true means special_tokens: bos)");
  if (doc.contains("sweep")) {
    const auto& pairs = doc["sweep"]["pairs"];
    for (std::size_t i = 0; i < pairs.size(); ++i)
      if (pairs[i] == "model_model" && spec.models.size() < 2)
        field_error(path, "sweep.pairs[" + std::to_string(i) + "]", "model_model needs two or more models");
    if (!doc.contains("extract")) field_error(path, "sweep", "needs an extract section (sweeps read the extracted activations)");
  }
  if (doc.contains("neurons")) {
    // A study that is accepted must run: the schema lists the planned ones, this version computes two.
    const auto& studies = doc["neurons"]["studies"];
    for (std::size_t i = 0; i < studies.size(); ++i) {
      for (std::size_t j = 0; j < i; ++j)
        if (studies[j] == studies[i]) field_error(path, "neurons.studies[" + std::to_string(i) + "]", "'" + studies[i].get<std::string>() + "' is listed twice");
    }
    const auto& r = doc["neurons"]["repetition"];
    if (r["window"] < r["ngram"]) field_error(path, "neurons.repetition.window", "must be at least ngram (" + r["ngram"].dump() + ")");
    if (r["min_second"] < r["span"]) field_error(path, "neurons.repetition.min_second", "must be at least span (" + r["span"].dump() + ")");
    const auto& lengths = doc["neurons"]["sensitive_directions"]["lengths"];
    for (std::size_t i = 1; i < lengths.size(); ++i)
      if (!(lengths[i] > lengths[i - 1]))
        field_error(path, "neurons.sensitive_directions.lengths[" + std::to_string(i) + "]", "lengths must increase");
    check_sae_decoders(spec, path);
    check_spatial(spec, path);
  }
  // A stage that is accepted must run: the schema knows this section, this version computes nothing for it.
  if (doc.contains("aggregate")) check_aggregate(spec, path);
  if (doc.contains("eval")) check_eval(spec, path);
  if (doc.contains("prune")) check_prune(spec, path);
  // Stages that work on checkpoints need models; without any they would silently have no work.
  if (spec.models.empty())
    for (const char* stage : {"extract", "zigzag", "sweep", "neurons", "eval", "prune"})
      if (doc.contains(stage))
        field_error(path, "models", std::string("expected at least one model: the ") + stage +
                                        " stage works on model checkpoints and would have nothing to do");
  return spec;
}

nlohmann::json work_item_section(const JobSpec& spec, const std::string& section) {
  return spec.written.contains(section) ? spec.written[section] : nlohmann::json::object();
}

std::string config_hash(const nlohmann::json& value) { return sha256_hex(value.dump()); }

std::vector<int> checkpoint_schedule(int steps, int every) {
  std::vector<int> s{0};
  for (int p = 1; p <= steps; p *= 2) s.push_back(p);
  if (every > 0)
    for (int k = every; k <= steps; k += every) s.push_back(k);
  s.push_back(steps);
  std::sort(s.begin(), s.end());
  s.erase(std::unique(s.begin(), s.end()), s.end());
  return s;
}

std::vector<CheckpointRef> trained_checkpoints(const JobSpec& spec, const ModelSpec& model) {
  if (!model.from_train) return model.checkpoints;
  // The checkpoints the train stage will save, whether or not it has run: work-item lists (and so
  // SLURM array indices) are fixed by the spec alone.
  const fs::path dir = fs::path(spec.output) / "checkpoints" / model.name;
  const auto& t = model.train;
  std::vector<CheckpointRef> out;
  for (int step : checkpoint_schedule(t["steps"].get<int>(), t["save_every"].get<int>()))
    out.push_back({"step" + std::to_string(step), (dir / ("step" + std::to_string(step))).string(), step});
  return out;
}

}  // namespace lmtopo::core
