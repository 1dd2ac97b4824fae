// Test tool: encodes the texts of a JSON list with a tokenizer.json and prints a JSON list of id
// lists, for the parity tests against Hugging Face `tokenizers`.
// Usage: tokenize_dump TOKENIZER(.json|DIR) TEXTS.json
//        tokenize_dump --decode TOKENIZER IDS.json [--skip-special]  (JSON list of id lists -> texts)
//        tokenize_dump --bytes TOKENIZER FILE   (the file's raw bytes as one text)
//        tokenize_dump --train VOCAB_SIZE TEXTS.json OUT.json   (byte-level BPE trainer)
#include <fstream>
#include <iostream>
#include <iterator>
#include <nlohmann/json.hpp>

#include "core/error.hpp"
#include "model/tokenizer.hpp"
#include "train/bpe_trainer.hpp"

int main(int argc, char** argv) {
  if (argc < 3) {
    std::cerr << "usage: tokenize_dump TOKENIZER TEXTS.json\n";
    return 2;
  }
  try {
    if (std::string(argv[1]) == "--train" && argc == 5) {
      std::ifstream in(argv[3]);
      const auto texts = nlohmann::json::parse(in).get<std::vector<std::string>>();
      std::ofstream(argv[4]) << lmtopo::train::train_byte_level_bpe(texts, std::stoi(argv[2]), {"<|endoftext|>", "<|padding|>"}).dump();
      return 0;
    }
    if (std::string(argv[1]) == "--decode" && argc >= 4) {
      const auto tok = lmtopo::model::Tokenizer::load(argv[2]);
      std::ifstream in(argv[3]);
      const bool skip = argc > 4 && std::string(argv[4]) == "--skip-special";
      nlohmann::json out = nlohmann::json::array();
      for (const auto& ids : nlohmann::json::parse(in)) out.push_back(tok->decode(ids.get<std::vector<std::int64_t>>(), skip));
      std::cout << out.dump() << "\n";
      return 0;
    }
    if (std::string(argv[1]) == "--bytes" && argc == 4) {  // one text: a file's raw bytes
      const auto tok = lmtopo::model::Tokenizer::load(argv[2]);
      std::ifstream in(argv[3], std::ios::binary);
      const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
      std::cout << nlohmann::json(tok->encode(text)).dump() << "\n";
      return 0;
    }
    const auto tok = lmtopo::model::Tokenizer::load(argv[1]);
    std::ifstream in(argv[2]);
    const auto texts = nlohmann::json::parse(in);
    nlohmann::json out = nlohmann::json::array();
    for (const auto& t : texts) out.push_back(tok->encode(t.get<std::string>()));
    std::cout << out.dump() << "\n";
  } catch (const lmtopo::InputError& e) {
    std::cerr << "tokenize_dump: error: " << e.what() << "\n";
    return 2;
  }
  return 0;
}
