#pragma once
// `Tokenizer`: text to token ids and back, for the vocabularies GGUF models
// carry — SentencePiece (`llama`) and byte-level BPE (`gpt2`) with the
// pre-tokenizer its `tokenizer.ggml.pre` names. It is immutable once built, so
// one instance serves any number of threads.
//
// Tokenisation follows llama.cpp's `llama_vocab::tokenize` step by step:
// invalid UTF-8 becomes U+FFFD; the texts of special tokens are cut out first
// (user-defined tokens always, control tokens only with `parse_special`); each
// remaining run of text is tokenised on its own.
//
// Detokenisation turns ids into bytes; `StreamDecoder` releases them as valid
// UTF-8 only, holding the bytes of a character split across tokens.

#include "text/pretokenize.h"
#include "text/utf8.h"
#include "text/vocab.h"
#include "util/result.h"

#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace strata::gguf {
class File;
}

namespace strata::text {

struct TokenizeParams {
    // Add BOS/EOS as the vocabulary asks (`add_bos_token` / `add_eos_token`).
    bool add_special = false;
    // Recognise the texts of control tokens ("<|im_start|>") in the input. Never
    // set this for user-supplied content.
    bool parse_special = false;
};

struct DetokenizeParams {
    // Print control and unknown tokens' text (e.g. "<s>"); they print nothing otherwise.
    bool special = false;
    // SentencePiece vocabularies add a space before the text; remove it again
    // from the first text printed.
    bool remove_space_prefix = true;
    // llama.cpp's `clean_up_tokenization_spaces` rules (" ," -> ","); pass
    // `vocab().clean_spaces()` to do what the reference detokeniser does.
    bool clean_spaces = false;
};

class Tokenizer {
  public:
    // The tokenizer of a model file; errors name the metadata key at fault.
    static Result<Tokenizer> load(const gguf::File& f);
    static Result<Tokenizer> create(Vocab vocab);

    const Vocab& vocab() const { return vocab_; }

    std::vector<TokenId> tokenize(std::string_view text, const TokenizeParams& p = {}) const;

    // The bytes token `id` stands for, possibly part of a UTF-8 character; empty
    // for an id out of range, and for control and unknown tokens unless `special`.
    std::string_view piece(TokenId id, bool special = false) const;

    // All of `ids` as valid UTF-8 (out-of-range ids print nothing).
    std::string detokenize(std::span<const TokenId> ids, const DetokenizeParams& p = {}) const;

  private:
    Vocab vocab_;
    std::optional<PreTokenizer> pre_;  // BPE only
    std::vector<std::string> pieces_;  // per token, as printed with `special`
};

// Turns a stream of generated ids into text pieces that are always valid UTF-8,
// for streaming to clients. Bound to a `Tokenizer` that must outlive it.
// Decoding a continuation of a prompt (generation), pass
// `.remove_space_prefix = false`: the first generated "▁word" keeps its space.
class StreamDecoder {
  public:
    explicit StreamDecoder(const Tokenizer& tok, const DetokenizeParams& p = {})
        : tok_(&tok), p_(p) {}

    // The text that `id` completes; may be empty (a held partial character).
    std::string push(TokenId id);
    // Whatever is still held, an unfinished character becoming U+FFFD.
    std::string finish();

  private:
    const Tokenizer* tok_;
    DetokenizeParams p_;
    Utf8Stream utf8_;
    bool at_start_ = true;  // no text printed yet: the space prefix is still to remove
};

}  // namespace strata::text
