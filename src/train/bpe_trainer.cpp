#include "train/bpe_trainer.hpp"

#include <algorithm>
#include <map>
#include <stdexcept>
#include <tuple>
#include <unordered_map>

#include "model/byte_level.hpp"

namespace lmtopo::train {

nlohmann::json train_byte_level_bpe(const std::vector<std::string>& texts, int vocab_size,
                                    const std::vector<std::string>& special_tokens) {
  const auto& bytes = model::byte_symbols();
  const int base = static_cast<int>(special_tokens.size()) + 256;
  if (vocab_size < base)
    throw std::invalid_argument("vocab_size must be at least " + std::to_string(base) + " (special tokens + 256 bytes)");
  std::vector<std::string> symbols(special_tokens);
  symbols.insert(symbols.end(), bytes.begin(), bytes.end());

  // Word frequencies over the GPT-2 split; words as sequences of symbol ids.
  const model::SplitRegex split(model::kGpt2SplitPattern, "bpe trainer");
  std::map<std::string, long long> freq;
  std::vector<std::string> pieces;
  for (const auto& t : texts) {
    pieces.clear();
    split.split(t, pieces);
    for (const auto& p : pieces) ++freq[p];
  }
  std::vector<std::vector<int>> words;
  std::vector<long long> counts;
  for (const auto& [piece, n] : freq) {
    std::vector<int> w;
    for (unsigned char c : piece) w.push_back(static_cast<int>(special_tokens.size()) + c);
    words.push_back(std::move(w));
    counts.push_back(n);
  }

  std::vector<std::string> merges;
  while (static_cast<int>(symbols.size()) < vocab_size) {
    std::unordered_map<long long, long long> pair_counts;
    for (std::size_t i = 0; i < words.size(); ++i)
      for (std::size_t k = 0; k + 1 < words[i].size(); ++k)
        pair_counts[static_cast<long long>(words[i][k]) * 1000003LL + words[i][k + 1]] += counts[i];
    long long best_key = -1, best_count = 1;
    for (const auto& [key, n] : pair_counts) {
      if (n < best_count) continue;
      const int a = static_cast<int>(key / 1000003LL), b = static_cast<int>(key % 1000003LL);
      if (n > best_count || best_key < 0 ||
          std::tie(symbols[static_cast<std::size_t>(a)], symbols[static_cast<std::size_t>(b)]) <
              std::tie(symbols[static_cast<std::size_t>(best_key / 1000003LL)], symbols[static_cast<std::size_t>(best_key % 1000003LL)])) {
        best_key = key;
        best_count = n;
      }
    }
    if (best_key < 0 || best_count < 2) break;
    const int a = static_cast<int>(best_key / 1000003LL), b = static_cast<int>(best_key % 1000003LL);
    const int merged = static_cast<int>(symbols.size());
    symbols.push_back(symbols[static_cast<std::size_t>(a)] + symbols[static_cast<std::size_t>(b)]);
    merges.push_back(symbols[static_cast<std::size_t>(a)] + " " + symbols[static_cast<std::size_t>(b)]);
    for (auto& w : words) {
      std::vector<int> out;
      for (std::size_t k = 0; k < w.size();) {
        if (k + 1 < w.size() && w[k] == a && w[k + 1] == b) {
          out.push_back(merged);
          k += 2;
        } else {
          out.push_back(w[k++]);
        }
      }
      w.swap(out);
    }
  }

  nlohmann::json vocab = nlohmann::json::object();
  for (std::size_t i = 0; i < symbols.size(); ++i) vocab[symbols[i]] = static_cast<long long>(i);
  nlohmann::json added = nlohmann::json::array();
  for (std::size_t i = 0; i < special_tokens.size(); ++i)
    added.push_back({{"id", i}, {"content", special_tokens[i]}, {"single_word", false}, {"lstrip", false},
                     {"rstrip", false}, {"normalized", false}, {"special", true}});
  nlohmann::json byte_level = {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"trim_offsets", true}, {"use_regex", true}};
  return {{"version", "1.0"},
          {"truncation", nullptr},
          {"padding", nullptr},
          {"added_tokens", added},
          {"normalizer", nullptr},
          {"pre_tokenizer", byte_level},
          {"post_processor", nullptr},
          {"decoder", byte_level},
          {"model",
           {{"type", "BPE"}, {"dropout", nullptr}, {"unk_token", nullptr}, {"continuing_subword_prefix", nullptr},
            {"end_of_word_suffix", nullptr}, {"fuse_unk", false}, {"byte_fallback", false}, {"ignore_merges", false},
            {"vocab", vocab}, {"merges", merges}}}};
}

}  // namespace lmtopo::train
