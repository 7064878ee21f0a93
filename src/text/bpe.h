#pragma once
// Byte-level BPE (`tokenizer.ggml.model = "gpt2"`): within one pre-tokenized
// word, written in GPT-2's byte characters, repeatedly merge the adjacent pair
// with the lowest merge rank. Matches llama.cpp's `llm_tokenizer_bpe`.

#include "text/vocab.h"

#include <string>
#include <string_view>
#include <vector>

namespace strata::text {

// GPT-2's byte characters for the bytes of `word`: "a b" becomes "aĠb".
void gpt2_byte_encode(std::string_view word, std::string& out);

// Appends the ids of `word` (already byte-encoded).
void bpe_tokenize_word(const Vocab& vocab, std::string_view word, std::vector<TokenId>& out);

}  // namespace strata::text
