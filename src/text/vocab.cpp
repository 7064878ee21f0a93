// Loading and validating a vocabulary, and the load-time attribute fix-ups that
// llama.cpp applies because GGUF files do not carry per-token attributes.

#include "text/vocab.h"

#include "gguf/file.h"
#include "text/pretokenize.h"
#include "text/utf8.h"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <cctype>

namespace strata::text {

namespace {

constexpr std::string_view kKeyModel = "tokenizer.ggml.model";
constexpr std::string_view kKeyPre = "tokenizer.ggml.pre";
constexpr std::string_view kKeyTokens = "tokenizer.ggml.tokens";
constexpr std::string_view kKeyScores = "tokenizer.ggml.scores";
constexpr std::string_view kKeyTypes = "tokenizer.ggml.token_type";
constexpr std::string_view kKeyMerges = "tokenizer.ggml.merges";

// Texts that mark the end of a turn in the chat formats in use; the first one a
// vocabulary has becomes its EOT token when the file names none.
constexpr std::array<std::string_view, 11> kEotTexts = {
    "<|eot_id|>",
    "<|im_end|>",
    "<|end|>",
    "<end_of_turn>",
    "<|endoftext|>",
    "<|end_of_text|>",
    "<EOT>",
    "_<EOT>",
    "[EOT]",
    "<\xef\xbd\x9c"
    "end\xe2\x96\x81of\xe2\x96\x81sentence\xef\xbd\x9c>",
    "<end_of_utterance>",
};

// Texts of tokens that end generation (llama.cpp's list, `llama-vocab.cpp`).
constexpr std::array<std::string_view, 22> kEogTexts = {
    "<|eot_id|>",
    "<|im_end|>",
    "<|end|>",
    "<|return|>",
    "<|call|>",
    "<|flush|>",
    "<|calls|>",
    "<end_of_turn>",
    "<|endoftext|>",
    "</s>",
    "<|eom_id|>",
    "<EOT>",
    "_<EOT>",
    "[EOT]",
    "[EOS]",
    "<|end_of_text|>",
    "<end_of_utterance>",
    "<eos>",
    "<turn|>",
    "<|tool_response>",
    "<\xef\xbd\x9c"
    "end\xe2\x96\x81of\xe2\x96\x81sentence\xef\xbd\x9c>",
    "[e~[",
};

uint32_t attr_from_type(int32_t type) {
    switch (static_cast<TokenType>(type)) {
        case TokenType::UNKNOWN:
            return ATTR_UNKNOWN;
        case TokenType::UNUSED:
            return ATTR_UNUSED;
        case TokenType::NORMAL:
            return ATTR_NORMAL;
        case TokenType::CONTROL:
            return ATTR_CONTROL;
        case TokenType::USER_DEFINED:
            return ATTR_USER_DEFINED;
        case TokenType::BYTE:
            return ATTR_BYTE;
        default:
            return ATTR_UNDEFINED;
    }
}

// Reads an optional token id; -1 and 0xFFFFFFFF (how converters write "none") are absent.
Status read_id(const gguf::File& f, std::string_view key, std::optional<int64_t>& out) {
    auto v = f.find_int(key);
    if (!v) return v.error();
    if (!*v) return {};
    const int64_t id = **v;
    if (id == -1 || id == 0xFFFFFFFFll) return {};
    out = id;
    return {};
}

Status read_flag(const gguf::File& f, std::string_view key, std::optional<bool>& out) {
    if (!f.find(key)) return {};
    auto v = f.get_bool(key);
    if (!v) return v.error();
    out = *v;
    return {};
}

}  // namespace

uint32_t gpt2_byte_to_cp(uint8_t b) {
    // Printable Latin-1 bytes stand for themselves; the others (controls, space,
    // DEL, NBSP, soft hyphen) are numbered from U+0100 up in byte order.
    static const std::array<uint32_t, 256> table = [] {
        std::array<uint32_t, 256> t{};
        uint32_t next = 256;
        for (uint32_t c = 0; c < 256; ++c) {
            const bool printable =
                (c >= '!' && c <= '~') || (c >= 0xA1 && c <= 0xAC) || (c >= 0xAE);
            t[c] = printable ? c : next++;
        }
        return t;
    }();
    return table[b];
}

int gpt2_cp_to_byte(uint32_t cp) {
    static const std::array<int16_t, 324> table = [] {
        std::array<int16_t, 324> t{};
        t.fill(-1);
        for (int b = 0; b < 256; ++b)
            t[gpt2_byte_to_cp(static_cast<uint8_t>(b))] = static_cast<int16_t>(b);
        return t;
    }();
    return cp < table.size() ? table[cp] : -1;
}

Result<Vocab> Vocab::load(const gguf::File& f) {
    VocabSpec spec;
    {
        auto model = f.get_string(kKeyModel);
        if (!model) return err("the file has no tokenizer: {}", model.error().message);
        spec.model = std::string(*model);
    }
    if (f.find(kKeyPre)) {
        auto pre = f.get_string(kKeyPre);
        if (!pre) return pre.error();
        spec.pre = std::string(*pre);
    }
    if (f.find("general.name")) {
        auto name = f.get_string("general.name");
        if (name) spec.name = std::string(*name);
    }

    auto tokens = f.get_array(kKeyTokens);
    if (!tokens) return tokens.error();
    if ((*tokens)->elem_type != gguf::ValueType::STRING)
        return err("{} must be an array of strings, not {}", kKeyTokens,
                   gguf::value_type_name((*tokens)->elem_type));
    spec.tokens.reserve((*tokens)->strings.size());
    for (std::string_view t : (*tokens)->strings) spec.tokens.emplace_back(t);

    if (f.find(kKeyScores)) {
        auto scores = f.get_array(kKeyScores);
        if (!scores) return scores.error();
        const gguf::Array& a = **scores;
        if (a.elem_type == gguf::ValueType::STRING || a.elem_type == gguf::ValueType::ARRAY)
            return err("{} must be numeric, not {}", kKeyScores,
                       gguf::value_type_name(a.elem_type));
        spec.scores.resize(a.count);
        for (uint64_t i = 0; i < a.count; ++i) spec.scores[i] = static_cast<float>(a.get_float(i));
    }
    if (f.find(kKeyTypes)) {
        auto types = f.get_array(kKeyTypes);
        if (!types) return types.error();
        const gguf::Array& a = **types;
        if (!gguf::is_integer(a.elem_type))
            return err("{} must be an integer array, not {}", kKeyTypes,
                       gguf::value_type_name(a.elem_type));
        spec.token_types.resize(a.count);
        for (uint64_t i = 0; i < a.count; ++i)
            spec.token_types[i] = static_cast<int32_t>(a.get_int(i));
    }
    if (f.find(kKeyMerges)) {
        auto merges = f.get_array(kKeyMerges);
        if (!merges) return merges.error();
        if ((*merges)->elem_type != gguf::ValueType::STRING)
            return err("{} must be an array of strings, not {}", kKeyMerges,
                       gguf::value_type_name((*merges)->elem_type));
        spec.merges.reserve((*merges)->strings.size());
        for (std::string_view m : (*merges)->strings) spec.merges.emplace_back(m);
    }

    STRATA_TRY(read_id(f, "tokenizer.ggml.bos_token_id", spec.bos));
    STRATA_TRY(read_id(f, "tokenizer.ggml.eos_token_id", spec.eos));
    STRATA_TRY(read_id(f, "tokenizer.ggml.eot_token_id", spec.eot));
    STRATA_TRY(read_id(f, "tokenizer.ggml.eom_token_id", spec.eom));
    STRATA_TRY(read_id(f, "tokenizer.ggml.unknown_token_id", spec.unk));
    STRATA_TRY(
        read_id(f, "tokenizer.ggml.seperator_token_id", spec.sep));  // sic, as GGUF spells it
    STRATA_TRY(read_id(f, "tokenizer.ggml.padding_token_id", spec.pad));
    STRATA_TRY(read_flag(f, "tokenizer.ggml.add_bos_token", spec.add_bos));
    STRATA_TRY(read_flag(f, "tokenizer.ggml.add_eos_token", spec.add_eos));
    STRATA_TRY(read_flag(f, "tokenizer.ggml.add_space_prefix", spec.add_space_prefix));
    return build(std::move(spec));
}

Result<Vocab> Vocab::build(VocabSpec spec) {
    Vocab v;
    v.model_ = spec.model;
    v.pre_ = spec.pre;
    PreTokenizerTraits traits;
    if (spec.model == "llama") {
        v.type_ = VocabType::SPM;
    } else if (spec.model == "gpt2") {
        v.type_ = VocabType::BPE;
        auto t = PreTokenizer::traits_for(spec.pre);
        if (!t) return t.error();
        traits = *t;
    } else {
        return err(
            "tokenizer '{}' ({}) is not supported; supported: llama (SentencePiece), gpt2 (BPE)",
            spec.model, kKeyModel);
    }

    const size_t n = spec.tokens.size();
    if (n == 0) return err("{} is empty", kKeyTokens);
    if (n > static_cast<size_t>(INT32_MAX))
        return err("{} has too many tokens ({})", kKeyTokens, n);
    if (!spec.scores.empty() && spec.scores.size() != n)
        return err("{} has {} entries but {} has {}", kKeyScores, spec.scores.size(), kKeyTokens,
                   n);
    if (!spec.token_types.empty() && spec.token_types.size() != n)
        return err("{} has {} entries but {} has {}", kKeyTypes, spec.token_types.size(),
                   kKeyTokens, n);
    if (v.type_ == VocabType::BPE && spec.merges.empty())
        return err("{} is missing or empty; a gpt2 (BPE) tokenizer needs it", kKeyMerges);

    v.tokens_.resize(n);
    v.index_.reserve(n);
    for (size_t i = 0; i < n; ++i) {
        TokenData& t = v.tokens_[i];
        t.text = std::move(spec.tokens[i]);
        if (t.text.empty())
            t.text = fmt::format("[EMPTY_{}]", i);  // as llama.cpp, so it stays findable
        t.score = spec.scores.empty() ? 0.0f : spec.scores[i];
        t.attr = spec.token_types.empty() ? ATTR_NORMAL : attr_from_type(spec.token_types[i]);
        auto [it, inserted] = v.index_.emplace(t.text, static_cast<TokenId>(i));
        if (!inserted)
            return err("{}: duplicate token '{}' at ids {} and {}", kKeyTokens,
                       utf8_sanitize(t.text), it->second, i);
    }

    v.merges_.reserve(spec.merges.size());
    for (size_t i = 0; i < spec.merges.size(); ++i) {
        const std::string& m = spec.merges[i];
        const size_t sp = m.size() > 1 ? m.find(' ', 1) : std::string::npos;
        if (sp == std::string::npos || sp + 1 >= m.size())
            return err("{}[{}] = '{}' is not two tokens separated by a space", kKeyMerges, i,
                       utf8_sanitize(m));
        v.merges_.emplace(m, static_cast<int>(i));  // a repeated merge keeps its first rank
    }

    // Defaults by tokenizer family (llama.cpp's), then what the file says.
    if (v.type_ == VocabType::SPM) {
        v.bos_ = 1, v.eos_ = 2, v.unk_ = 0;
        v.add_bos_ = true, v.add_space_prefix_ = true, v.clean_spaces_ = false;
        for (TokenId* id : {&v.bos_, &v.eos_, &v.unk_})
            if (!v.valid(*id)) *id = kNoToken;
    } else {
        v.add_bos_ = traits.add_bos;
        v.clean_spaces_ = traits.clean_spaces;
        v.ignore_merges_ = traits.ignore_merges;
    }
    const struct {
        std::string_view key;
        const std::optional<int64_t>& value;
        TokenId& id;
    } ids[] = {
        {"tokenizer.ggml.bos_token_id", spec.bos, v.bos_},
        {"tokenizer.ggml.eos_token_id", spec.eos, v.eos_},
        {"tokenizer.ggml.eot_token_id", spec.eot, v.eot_},
        {"tokenizer.ggml.eom_token_id", spec.eom, v.eom_},
        {"tokenizer.ggml.unknown_token_id", spec.unk, v.unk_},
        {"tokenizer.ggml.seperator_token_id", spec.sep, v.sep_},
        {"tokenizer.ggml.padding_token_id", spec.pad, v.pad_},
    };
    for (const auto& e : ids) {
        if (!e.value) continue;
        if (*e.value < 0 || static_cast<uint64_t>(*e.value) >= n)
            return err("{} = {} is out of range (the vocabulary has {} tokens)", e.key, *e.value,
                       n);
        e.id = static_cast<TokenId>(*e.value);
    }
    if (spec.add_bos) v.add_bos_ = *spec.add_bos;
    if (spec.add_eos) v.add_eos_ = *spec.add_eos;
    if (spec.add_space_prefix) v.add_space_prefix_ = *spec.add_space_prefix;
    if (v.add_bos_ && v.bos_ == kNoToken)
        return err(
            "tokenizer.ggml.add_bos_token is true but tokenizer.ggml.bos_token_id is not set");
    if (v.add_eos_ && v.eos_ == kNoToken)
        return err(
            "tokenizer.ggml.add_eos_token is true but tokenizer.ggml.eos_token_id is not set");

    // End-of-turn and end-of-generation tokens found by their text; a token that
    // ends generation is a control token whatever the file says, so it is never
    // printed or matched in user text by accident.
    if (v.eot_ == kNoToken) {
        for (std::string_view t : kEotTexts) {
            if (const TokenId id = v.find(t); id != kNoToken) {
                v.eot_ = id;
                break;
            }
        }
    }
    if (v.eom_ == kNoToken) v.eom_ = v.find("<|eom_id|>");
    std::vector<TokenId> eog;
    for (std::string_view t : kEogTexts)
        if (const TokenId id = v.find(t); id != kNoToken) eog.push_back(id);
    for (TokenId id : {v.eos_, v.eot_, v.eom_})
        if (id != kNoToken) eog.push_back(id);
    for (TokenId id : eog) v.tokens_[id].attr |= ATTR_CONTROL;

    // GPT-OSS (o200k harmony): `<|end|>` separates messages and does not end
    // generation when `<|return|>` and `<|call|>` exist; the harmony markers are
    // printed so that callers can parse channels.
    if (const TokenId end = v.find("<|end|>");
        end != kNoToken && v.find("<|return|>") != kNoToken &&
        (v.find("<|call|>") != kNoToken || v.find("<|calls|>") != kNoToken)) {
        eog.erase(std::remove(eog.begin(), eog.end(), end), eog.end());
        v.tokens_[end].attr |= ATTR_ALWAYS_RENDER;
    }
    for (std::string_view t : {"<|channel|>", "<|message|>", "<|start|>", "<|constrain|>"})
        if (const TokenId id = v.find(t); id != kNoToken) v.tokens_[id].attr |= ATTR_ALWAYS_RENDER;
    std::sort(eog.begin(), eog.end());
    eog.erase(std::unique(eog.begin(), eog.end()), eog.end());
    v.eog_ = std::move(eog);

    // Control tokens whose text says "unused" are placeholders.
    for (TokenData& t : v.tokens_)
        if ((t.attr & ATTR_CONTROL) && t.text.find("unused") != std::string::npos)
            t.attr |= ATTR_UNUSED;

    for (size_t i = 0; i < n; ++i)
        if (v.tokens_[i].attr & (ATTR_CONTROL | ATTR_USER_DEFINED | ATTR_UNKNOWN))
            v.special_.push_back(static_cast<TokenId>(i));
    std::stable_sort(v.special_.begin(), v.special_.end(), [&v](TokenId a, TokenId b) {
        return v.tokens_[a].text.size() > v.tokens_[b].text.size();
    });

    // Phi-3's special tokens swallow the whitespace after them (its tokenizer.json
    // says `rstrip`), except the three that begin or pad a sequence.
    std::string name = spec.name;
    std::transform(name.begin(), name.end(), name.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    if (name.find("phi-3") != std::string::npos || name.find("phi3") != std::string::npos) {
        for (TokenId id : v.special_) v.tokens_[id].attr |= ATTR_RSTRIP;
        if (const TokenId id = v.find("</s>"); id != kNoToken) v.tokens_[id].attr |= ATTR_RSTRIP;
        for (std::string_view t : {"<unk>", "<s>", "<|endoftext|>"})
            if (const TokenId id = v.find(t); id != kNoToken) v.tokens_[id].attr &= ~ATTR_RSTRIP;
    }

    for (int b = 0; b < 256; ++b) {
        TokenId id = kNoToken;
        if (v.type_ == VocabType::SPM) {
            id = v.find(fmt::format("<0x{:02X}>", b));
            if (id == kNoToken && b < 0x80) id = v.find(std::string(1, static_cast<char>(b)));
        } else {
            std::string s;
            utf8_append(s, gpt2_byte_to_cp(static_cast<uint8_t>(b)));
            id = v.find(s);
        }
        v.byte_tokens_[b] = id;
    }
    return v;
}

TokenId Vocab::find(std::string_view text) const {
    const auto it = index_.find(text);
    return it == index_.end() ? kNoToken : it->second;
}

int Vocab::merge_rank(std::string_view left, std::string_view right) const {
    // The lookup key is "left right". Merges run in BPE's innermost loop, so a
    // short key is built on the stack rather than allocated.
    const size_t len = left.size() + 1 + right.size();
    char buf[128];
    std::string heap;
    char* key = buf;
    if (len > sizeof buf) {
        heap.resize(len);
        key = heap.data();
    }
    std::copy(left.begin(), left.end(), key);
    key[left.size()] = ' ';
    std::copy(right.begin(), right.end(), key + left.size() + 1);
    const auto it = merges_.find(std::string_view(key, len));
    return it == merges_.end() ? -1 : it->second;
}

bool Vocab::is_eog(TokenId id) const {
    return std::binary_search(eog_.begin(), eog_.end(), id);
}

}  // namespace strata::text
