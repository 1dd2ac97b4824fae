// Trains a byte-level BPE tokenizer (GPT-2 / GPT-NeoX style) and writes it as a Hugging Face
// tokenizer.json that `tokenizers` loads and encodes identically. No libtorch here.
#pragma once
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace lmtopo::train {

// Vocabulary: the special tokens (ids 0..s-1), the 256 byte symbols in byte order, then one token
// per merge until `vocab_size`. Each step merges the most frequent adjacent pair over the
// pre-tokenized words (GPT-2 split), ties broken by the pair's strings; stops early when no pair
// occurs twice. Deterministic.
nlohmann::json train_byte_level_bpe(const std::vector<std::string>& texts, int vocab_size,
                                    const std::vector<std::string>& special_tokens);

}  // namespace lmtopo::train
