// Continuing prompts token by token, shared by `generate` and the repetition-neurons study: a batch of
// prompts left-padded so that each row's newest token is in the last column, numbered from its first
// real token (as transformers' generate() does); with a key/value cache the first step runs the
// prompts and every later one only the newest tokens. Interventions apply at every position as it is
// computed, so with the cache each token is intervened on once, when it is the current one.
#pragma once
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "model/transformer.hpp"

namespace lmtopo::stages {

struct DecodeOptions {
  int max_new_tokens = 32;
  double temperature = 0;  // 0: greedy (argmax, the first of equal logits); > 0: sampling
  bool stop_at_eos = true;
  bool kv_cache = true;
  model::Interventions interventions;
};

// Hook states captured while decoding, for every generated token: each hook's points at the position
// whose logits chose the token (the prompt's last token for the first, then each generated token in
// turn), i.e. the states the token was generated from.
struct CapturedStates {
  std::vector<std::string> hooks;                     // asked for
  std::vector<std::vector<std::string>> points;       // per hook: its point names (filled while decoding)
  std::vector<std::int64_t> width;                    // per hook
  std::vector<std::vector<std::vector<float>>> rows;  // [member][hook]: [token][point][width], flat
};

// The continuations of tokens[members] (one vector per member). A row stops at EOS (stop_at_eos) or at
// the model's learned positions; until every row has, stopped rows run along (their tokens ignored).
// `rngs` (one per member) are drawn from only when sampling.
std::vector<std::vector<std::int64_t>> continue_batch(model::Transformer& net, const std::vector<std::vector<std::int64_t>>& tokens,
                                                      const std::vector<std::size_t>& members, const DecodeOptions& o,
                                                      std::vector<std::mt19937_64>& rngs, CapturedStates* states = nullptr);

}  // namespace lmtopo::stages
