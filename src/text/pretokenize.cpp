// The pre-tokenizer families and the PCRE2 plumbing that runs them. The
// patterns are those of the reference tokenizers (Hugging Face `tokenizer.json`
// files as llama.cpp ships them in `llama-vocab.cpp`); where llama.cpp rewrote a
// pattern only because `std::regex` lacks a feature, the original is used, since
// PCRE2 has the feature (Unicode sub-categories, possessive quantifiers).
// Case-insensitive contractions are spelled `'[sS]` rather than `(?i:'s)` so that
// Unicode case folding cannot make `'ſ` (long s) a contraction.

#include "text/pretokenize.h"

#include "text/utf8.h"
#include "util/check.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <algorithm>

namespace strata::text {

struct PreTokenizer::Regex {
    std::string pattern;
    pcre2_code* code = nullptr;
    ~Regex() { pcre2_code_free(code); }
};

namespace {

// --- the patterns -----------------------------------------------------------

constexpr const char* kGpt2 =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S))";

#define STRATA_CONTRACTIONS R"((?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD]))"

constexpr const char* kLlama3 = STRATA_CONTRACTIONS
    R"(|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";

constexpr const char* kQwen2 = STRATA_CONTRACTIONS
    R"(|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";

constexpr const char* kQwen35 = STRATA_CONTRACTIONS
    R"(|[^\r\n\p{L}\p{N}]?[\p{L}\p{M}]+|\p{N}| ?[^\s\p{L}\p{M}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";

constexpr const char* kSeedCoder = STRATA_CONTRACTIONS
    R"(|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1}| ?[^\s\p{L}\p{N}\r\n]+|\s*[\r\n]+|\s+(?!\S)|\s+)";

constexpr const char* kBailing =
    R"('(?:[sSdDmMtT]|[lL][lL]|[vV][eE]|[rR][eE])|[^\r\n\p{L}\p{N}]?+\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]++[\r\n]*|\s*[\r\n]|\s+(?!\S)|\s+)";

// o200k (GPT-4o, GPT-OSS): upper-then-lower letter runs, so "HelloWorld" is two words.
constexpr const char* kGpt4o =
    R"([^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+)" STRATA_CONTRACTIONS
    R"(?|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*)" STRATA_CONTRACTIONS
    R"(?|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+)";

constexpr const char* kTekken =
    R"([^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+)"
    R"(|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*)"
    R"(|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+)";

#undef STRATA_CONTRACTIONS

// CJK ideographs, Samaritan..CJK and Hangul, as DeepSeek's tokenizer.json spells them.
constexpr const char* kDeepseekCjk = R"([\x{4E00}-\x{9FA5}\x{800}-\x{4E00}\x{AC00}-\x{D7FF}]+)";

// DeepSeek-LLM's cased-letter class, written out as its tokenizer.json does (code
// points escaped so that no editor's normalisation can change them).
constexpr const char* kDeepseekLetters =
    R"(\s?[A-Za-z\x{B5}\x{C0}-\x{D6}\x{D8}-\x{F6}\x{F8}-\x{1BA}\x{1BC}-\x{1BF}\x{1C4}-\x{293})"
    R"(\x{295}-\x{2AF}\x{370}-\x{373}\x{376}\x{377}\x{37B}-\x{37D}\x{37F}\x{386}\x{388}-\x{38A})"
    R"(\x{38C}\x{38E}-\x{3A1}\x{3A3}-\x{3F5}\x{3F7}-\x{481}\x{48A}-\x{52F}\x{531}-\x{556})"
    R"(\x{10A0}-\x{10C5}\x{13A0}-\x{13F5}\x{13F8}-\x{13FD}\x{1C90}-\x{1CBA}\x{1CBD}-\x{1CBF})"
    R"(\x{1D00}-\x{1D2B}\x{1D6B}-\x{1D77}\x{1D79}-\x{1D9A}\x{1E00}-\x{1F15}\x{1F18}-\x{1F1D})"
    R"(\x{1F20}-\x{1F45}\x{1F48}-\x{1F4D}\x{1F50}-\x{1F57}\x{1F59}\x{1F5B}\x{1F5D}\x{1F5F}-\x{1F7D})"
    R"(\x{1F80}-\x{1FB4}\x{1FB6}-\x{1FBC}\x{1FBE}\x{1FC2}-\x{1FC4}\x{1FC6}-\x{1FCC}\x{1FD0}-\x{1FD3})"
    R"(\x{1FD6}-\x{1FDB}\x{1FE0}-\x{1FEC}\x{1FF2}-\x{1FF4}\x{1FF6}-\x{1FFC}\x{2102}\x{2107})"
    R"(\x{210A}-\x{2113}\x{2115}\x{2119}-\x{211D}\x{2124}\x{2126}\x{2128}\x{212A}-\x{212D})"
    R"(\x{212F}-\x{2134}\x{2139}\x{213C}-\x{213F}\x{2145}-\x{2149}\x{214E}\x{2183}\x{2184})"
    R"(\x{2C00}-\x{2C7B}\x{2C7E}-\x{2CE4}\x{2CEB}-\x{2CEE}\x{2CF2}\x{2CF3}\x{A640}-\x{A66D})"
    R"(\x{A680}-\x{A69B}\x{A722}-\x{A76F}\x{A771}-\x{A787}\x{A78B}-\x{A78E}\x{AB70}-\x{ABBF})"
    R"(\x{FB00}-\x{FB06}\x{FB13}-\x{FB17}\x{FF21}-\x{FF3A}\x{FF41}-\x{FF5A}\x{10400}-\x{1044F})"
    R"(\x{104B0}-\x{104D3}\x{104D8}-\x{104FB}\x{10C80}-\x{10CB2}\x{10CC0}-\x{10CF2}\x{118A0}-\x{118DF})"
    R"(\x{1E900}-\x{1E943}]+)";

constexpr const char* kPoro =
    R"( ?[^(\s|.,!?\x{2026}\x{3002}\x{FF0C}\x{3001}\x{964}\x{6D4}\x{60C})]+)";

struct Family {
    std::vector<std::string_view> names;
    std::vector<std::string> regexes;
    PreTokenizerTraits traits;
};

const std::vector<Family>& families() {
    static const std::vector<Family> k = {
        {{"default"}, {R"([\p{P}\$\+<=>\^~\|]+)", kGpt2, R"(\p{N}+)", "[0-9][0-9][0-9]"}, {}},
        {{"gpt-2", "phi-2", "jina-es", "jina-de", "gigachat", "jina-v2-es", "jina-v2-de", "a.x-4.0",
          "mellum", "modern-bert", "jina-v1-en", "jina-v2-code", "roberta-bpe", "mpt", "olmo",
          "jais", "exaone4"},
         {kGpt2},
         {}},
        {{"trillion", "granite-docling"}, {kGpt2}, {.clean_spaces = false}},
        {{"llama3", "llama-v3", "llama-bpe", "falcon3", "falcon-h1", "pixtral", "midm-2.0", "lfm2"},
         {kLlama3},
         {.ignore_merges = true, .add_bos = true}},
        {{"dbrx", "smaug-bpe", "glm4", "chatglm-bpe"}, {kLlama3}, {}},
        {{"qwen2", "deepseek-r1-qwen", "kormo", "f2llmv2", "hunyuan", "solar-open", "grok-2"},
         {kQwen2},
         {.clean_spaces = false}},
        {{"stablelm2", "megrez"}, {kQwen2}, {}},
        {{"qwen35"}, {kQwen35}, {.clean_spaces = false}},
        {{"deepseek-llm"},
         {"[\r\n]", kDeepseekLetters,
          R"(\s?[!-/:-~\x{FF01}-\x{FF0F}\x{FF1A}-\x{FF5E}\x{2018}-\x{201F}\x{3000}-\x{3002}]+)",
          R"(\s+$)", kDeepseekCjk, R"(\p{N}+)"},
         {.clean_spaces = false}},
        {{"deepseek-coder"},
         {"[\r\n]", R"(\s?\p{L}+)", R"(\s?\p{P}+)", kDeepseekCjk, R"(\p{N})"},
         {.clean_spaces = false}},
        {{"deepseek-v3", "hunyuan-dense", "joyai-llm"},
         {R"(\p{N}{1,3})", R"([\x{4E00}-\x{9FA5}\x{3040}-\x{309F}\x{30A0}-\x{30FF}]+)",
          R"([!"#$%&'()*+,\-./:;<=>?@\[\\\]^_`{|}~][A-Za-z]+|[^\r\n\p{L}\p{P}\p{S}]?[\p{L}\p{M}]+)"
          R"(| ?[\p{P}\p{S}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)"},
         {.clean_spaces = false}},
        {{"falcon"}, {R"([\p{P}\$\+<=>\^~\|`]+)", kGpt2, "[0-9][0-9][0-9]"}, {}},
        {{"starcoder", "refact", "codeshell", "exaone", "minerva-7b", "mellum2"},
         {R"(\p{N})", kGpt2},
         {}},
        {{"command-r", "smollm"}, {R"(\p{N})", kGpt2}, {.clean_spaces = false}},
        {{"gpt-4o", "llama4", "kanana2", "talkie", "minimax-m2"},
         {kGpt4o},
         {.clean_spaces = false}},
        {{"tekken"}, {kTekken}, {.ignore_merges = true, .clean_spaces = false, .add_bos = true}},
        {{"poro-chat"}, {kPoro}, {.clean_spaces = false}},
        {{"bloom", "gpt3-finnish"}, {kPoro}, {}},
        {{"viking"}, {kPoro, R"(\p{N})"}, {.clean_spaces = false}},
        {{"seed-coder"}, {kSeedCoder}, {.clean_spaces = false}},
        {{"bailingmoe", "bailingmoe2", "llada-moe"}, {kBailing}, {.clean_spaces = false}},
    };
    return k;
}

Result<std::shared_ptr<const PreTokenizer::Regex>> compile(const std::string& pattern) {
    int errcode = 0;
    PCRE2_SIZE erroffset = 0;
    pcre2_code* code =
        pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.data()), pattern.size(),
                      PCRE2_UTF | PCRE2_UCP | PCRE2_DOLLAR_ENDONLY, &errcode, &erroffset, nullptr);
    if (!code) {
        PCRE2_UCHAR msg[256];
        pcre2_get_error_message(errcode, msg, sizeof msg);
        return err("pre-tokenizer regex '{}': {} at offset {}", pattern,
                   reinterpret_cast<const char*>(msg), erroffset);
    }
    // JIT is an optimisation only: where it is unavailable the interpreter runs.
    pcre2_jit_compile(code, PCRE2_JIT_COMPLETE);
    auto r = std::make_shared<PreTokenizer::Regex>();
    r->pattern = pattern;
    r->code = code;
    return std::shared_ptr<const PreTokenizer::Regex>(std::move(r));
}

struct MatchData {
    explicit MatchData(const pcre2_code* code)
        : md(pcre2_match_data_create_from_pattern(code, nullptr)) {
        CHECK(md != nullptr, "out of memory creating PCRE2 match data");
    }
    ~MatchData() { pcre2_match_data_free(md); }
    MatchData(const MatchData&) = delete;
    MatchData& operator=(const MatchData&) = delete;
    pcre2_match_data* md;
};

// Finds the next match in `subject` at or after `start`: true with [`b`, `e`) set,
// false when there is none (or the matcher gave up, which leaves the rest of the
// piece unsplit rather than failing the request).
bool next_match(const pcre2_code* code, pcre2_match_data* md, std::string_view subject,
                size_t start, size_t& b, size_t& e) {
    const auto* s = reinterpret_cast<PCRE2_SPTR>(subject.data());
    int rc = pcre2_match(code, s, subject.size(), start, PCRE2_NO_UTF_CHECK, md, nullptr);
    if (rc == PCRE2_ERROR_JIT_STACKLIMIT)  // the interpreter keeps its frames on the heap
        rc = pcre2_match(code, s, subject.size(), start, PCRE2_NO_UTF_CHECK | PCRE2_NO_JIT, md,
                         nullptr);
    if (rc < 0) return false;
    const PCRE2_SIZE* ov = pcre2_get_ovector_pointer(md);
    b = ov[0];
    e = ov[1];
    return e >= b && e <= subject.size();
}

// Splits every piece of `in` by `re`, keeping the text between matches.
void split_by(const PreTokenizer::Regex& re, const std::vector<std::string_view>& in,
              std::vector<std::string_view>& out) {
    MatchData data(re.code);
    out.clear();
    for (std::string_view piece : in) {
        size_t pos = 0;   // where the next search starts
        size_t kept = 0;  // end of what has been emitted
        size_t b = 0, e = 0;
        while (pos < piece.size() && next_match(re.code, data.md, piece, pos, b, e)) {
            if (e == b) {
                // An empty match emits nothing; step over one character and go on.
                pos = b + utf8_step(piece, b).len;
                continue;
            }
            if (b > kept) out.push_back(piece.substr(kept, b - kept));
            out.push_back(piece.substr(b, e - b));
            kept = pos = e;
        }
        if (kept < piece.size()) out.push_back(piece.substr(kept));
    }
}

}  // namespace

Result<PreTokenizer> PreTokenizer::from_regexes(const std::vector<std::string>& regexes) {
    PreTokenizer p;
    p.name_ = "custom";
    for (const std::string& r : regexes) {
        auto c = compile(r);
        if (!c) return c.error();
        p.regexes_.push_back(std::move(*c));
    }
    return p;
}

Result<PreTokenizer> PreTokenizer::create(std::string_view name) {
    const std::string_view key = name.empty() ? std::string_view("default") : name;
    for (const Family& f : families()) {
        if (std::find(f.names.begin(), f.names.end(), key) == f.names.end()) continue;
        auto p = from_regexes(f.regexes);
        if (!p) return p.error();
        p->name_ = std::string(key);
        p->traits_ = f.traits;
        return p;
    }
    return err("unknown pre-tokenizer '{}' (tokenizer.ggml.pre)", name);
}

Result<PreTokenizerTraits> PreTokenizer::traits_for(std::string_view name) {
    const std::string_view key = name.empty() ? std::string_view("default") : name;
    for (const Family& f : families())
        if (std::find(f.names.begin(), f.names.end(), key) != f.names.end()) return f.traits;
    return err("unknown pre-tokenizer '{}' (tokenizer.ggml.pre)", name);
}

std::vector<std::string> PreTokenizer::known_names() {
    std::vector<std::string> names;
    for (const Family& f : families())
        for (std::string_view n : f.names) names.emplace_back(n);
    return names;
}

std::vector<std::string_view> PreTokenizer::split(std::string_view text) const {
    CHECK(utf8_is_valid(text), "PreTokenizer::split needs valid UTF-8 (sanitize first)");
    std::vector<std::string_view> pieces;
    if (text.empty()) return pieces;
    pieces.push_back(text);
    std::vector<std::string_view> next;
    for (const auto& re : regexes_) {
        split_by(*re, pieces, next);
        pieces.swap(next);
    }
    return pieces;
}

}  // namespace strata::text
