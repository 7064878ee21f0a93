#pragma once
// Pre-tokenizers for byte-level BPE vocabularies: the regexes that cut text
// into words before merges run, one set per `tokenizer.ggml.pre` family.
//
// A family is a list of regexes applied in turn, as llama.cpp and Hugging Face's
// `Sequence` of `Split` pre-tokenizers do: each regex runs over every piece left
// by the previous one (a piece boundary acts as the end of the subject for
// anchors and look-arounds), and the text between matches stays as pieces of
// its own, so the pieces always concatenate back to the input. Regexes run on
// PCRE2 with Unicode properties (`PCRE2_UTF | PCRE2_UCP`).

#include "util/result.h"

#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace strata::text {

// Per-family tokenizer behaviour that llama.cpp keys on the pre-tokenizer name.
struct PreTokenizerTraits {
    bool ignore_merges = false;  // a word that is itself a token skips the merges
    bool clean_spaces = true;  // detokenisation may apply the `clean_up_tokenization_spaces` rules
    bool add_bos = false;      // default for `add_bos_token` when the file does not say
};

class PreTokenizer {
  public:
    // `name` is `tokenizer.ggml.pre`; empty means "default" (llama.cpp's fallback).
    // An unknown name is an error naming it.
    static Result<PreTokenizer> create(std::string_view name);
    // Builds one from explicit regexes (PCRE2 syntax); an error names the bad one.
    static Result<PreTokenizer> from_regexes(const std::vector<std::string>& regexes);

    // Cuts valid UTF-8 `text` into pieces that concatenate back to `text`.
    std::vector<std::string_view> split(std::string_view text) const;

    const std::string& name() const { return name_; }
    const PreTokenizerTraits& traits() const { return traits_; }

    // The behaviour flags of family `name` without compiling its regexes.
    static Result<PreTokenizerTraits> traits_for(std::string_view name);

    // The names `create` accepts, for messages and tests.
    static std::vector<std::string> known_names();

    struct Regex;  // a compiled PCRE2 pattern (shared: compiled code is immutable)

  private:
    std::string name_;
    PreTokenizerTraits traits_;
    std::vector<std::shared_ptr<const Regex>> regexes_;
};

}  // namespace strata::text
