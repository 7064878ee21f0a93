#pragma once
// `Vocab`: a tokenizer vocabulary as a GGUF file stores it under
// `tokenizer.ggml.*` — token texts, scores, types, BPE merges, special token ids
// and the add-BOS/EOS flags — validated and indexed for the tokenizers.
//
// Token attributes follow llama.cpp's (`llama_token_attr`), including the fix-ups
// it applies at load time: end-of-turn-looking tokens are made control tokens,
// and Phi-3's special tokens strip the whitespace to their right.

#include "util/result.h"

#include <array>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace strata::gguf {
class File;
}

namespace strata::text {

using TokenId = int32_t;
inline constexpr TokenId kNoToken = -1;

enum class VocabType { SPM, BPE };

// `tokenizer.ggml.token_type` values (GGUF spec).
enum class TokenType : int32_t {
    UNDEFINED = 0,
    NORMAL = 1,
    UNKNOWN = 2,
    CONTROL = 3,
    USER_DEFINED = 4,
    UNUSED = 5,
    BYTE = 6,
};

// Bit flags, as llama.cpp's `llama_token_attr`.
enum TokenAttr : uint32_t {
    ATTR_UNDEFINED = 0,
    ATTR_UNKNOWN = 1u << 0,
    ATTR_UNUSED = 1u << 1,
    ATTR_NORMAL = 1u << 2,
    ATTR_CONTROL = 1u << 3,
    ATTR_USER_DEFINED = 1u << 4,
    ATTR_BYTE = 1u << 5,
    ATTR_LSTRIP = 1u << 7,
    ATTR_RSTRIP = 1u << 8,
    // Not in llama.cpp: printed by detokenisation even when control tokens are not
    // (GPT-OSS's harmony markers, which callers must see to parse the output).
    ATTR_ALWAYS_RENDER = 1u << 16,
};

struct TokenData {
    std::string text;
    float score = 0.0f;
    uint32_t attr = ATTR_NORMAL;
};

// Everything a vocabulary is built from; `Vocab::load` fills it from GGUF metadata
// and tests build small ones by hand. Optional ids are absent when not given.
struct VocabSpec {
    std::string model;  // "llama" (SentencePiece) or "gpt2" (byte-level BPE)
    std::string pre;    // pre-tokenizer family, BPE only
    std::string name;   // general.name, for the per-model attribute fix-ups
    std::vector<std::string> tokens;
    std::vector<float> scores;         // empty: all 0
    std::vector<int32_t> token_types;  // empty: all NORMAL
    std::vector<std::string> merges;   // BPE: "left right", in rank order
    std::optional<int64_t> bos, eos, eot, eom, unk, sep, pad;
    std::optional<bool> add_bos, add_eos, add_space_prefix;
};

class Vocab {
  public:
    // Reads `tokenizer.ggml.*` from `f`. Errors name the offending key.
    static Result<Vocab> load(const gguf::File& f);
    static Result<Vocab> build(VocabSpec spec);

    VocabType type() const { return type_; }
    const std::string& model() const { return model_; }
    const std::string& pre() const { return pre_; }
    size_t size() const { return tokens_.size(); }
    bool valid(TokenId id) const { return id >= 0 && static_cast<size_t>(id) < tokens_.size(); }

    const TokenData& token(TokenId id) const { return tokens_[static_cast<size_t>(id)]; }
    const std::string& text(TokenId id) const { return token(id).text; }
    uint32_t attr(TokenId id) const { return token(id).attr; }
    bool has_attr(TokenId id, uint32_t a) const { return (token(id).attr & a) != 0; }
    bool is_control(TokenId id) const { return has_attr(id, ATTR_CONTROL); }

    // The id of the token whose text is exactly `text`, or `kNoToken`.
    TokenId find(std::string_view text) const;
    // BPE merge rank of `left` + `right` (lower merges first), or -1.
    int merge_rank(std::string_view left, std::string_view right) const;
    // The token for one raw byte: `<0xAB>` (SentencePiece byte fallback) or the
    // byte's GPT-2 character (byte-level BPE); `kNoToken` when the vocab lacks it.
    TokenId byte_token(uint8_t b) const { return byte_tokens_[b]; }

    TokenId bos() const { return bos_; }
    TokenId eos() const { return eos_; }
    TokenId eot() const { return eot_; }
    TokenId eom() const { return eom_; }
    TokenId unk() const { return unk_; }
    TokenId sep() const { return sep_; }
    TokenId pad() const { return pad_; }
    bool add_bos() const { return add_bos_; }
    bool add_eos() const { return add_eos_; }
    bool add_space_prefix() const { return add_space_prefix_; }
    // Whether the reference detokeniser removes spaces before `?!.,` and in contractions.
    bool clean_spaces() const { return clean_spaces_; }
    // BPE: a pre-tokenized word that is itself a token is not merged further.
    bool ignore_merges() const { return ignore_merges_; }
    // End-of-generation tokens: EOS, EOT, EOM and the tokens that look like them.
    bool is_eog(TokenId id) const;
    const std::vector<TokenId>& eog_ids() const { return eog_; }

    // Tokens matched in raw text before tokenisation (control, user-defined and
    // unknown), longest text first — the order in which llama.cpp partitions.
    const std::vector<TokenId>& special_tokens() const { return special_; }

  private:
    struct StringHash {
        using is_transparent = void;
        size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
    };
    using Index = std::unordered_map<std::string, TokenId, StringHash, std::equal_to<>>;

    VocabType type_ = VocabType::SPM;
    std::string model_, pre_;
    std::vector<TokenData> tokens_;
    Index index_;
    std::unordered_map<std::string, int, StringHash, std::equal_to<>> merges_;  // "left right"
    std::array<TokenId, 256> byte_tokens_{};
    TokenId bos_ = kNoToken, eos_ = kNoToken, eot_ = kNoToken, eom_ = kNoToken;
    TokenId unk_ = kNoToken, sep_ = kNoToken, pad_ = kNoToken;
    bool add_bos_ = false, add_eos_ = false, add_space_prefix_ = false;
    bool clean_spaces_ = false, ignore_merges_ = false;
    std::vector<TokenId> eog_;
    std::vector<TokenId> special_;
};

// GPT-2's byte-to-character table: byte-level BPE writes every byte as a
// printable code point (space becomes `Ġ`, newline `Ċ`).
uint32_t gpt2_byte_to_cp(uint8_t b);
// The inverse; -1 for a code point that is no byte's character.
int gpt2_cp_to_byte(uint32_t cp);

}  // namespace strata::text
