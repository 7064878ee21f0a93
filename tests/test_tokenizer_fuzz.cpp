// A brief fuzz run of the tokenizers: random and mutated byte strings through
// tokenize and detokenize with every fixture vocabulary. Asserts no crash, ids
// in range, valid UTF-8 out, and that valid input round-trips.

#include "gguf/file.h"
#include "test_util.h"
#include "text/tokenizer.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <random>

namespace strata {
namespace {

using text::TokenId;

// Seeds chosen to reach the interesting paths: multi-byte characters split at
// every point, special-token texts, whitespace runs, digits, contractions.
const char* const kSeeds[] = {
    "Hello, world! It's 12345 o'clock.",
    "  \t\n\n  leading and trailing  \r\n",
    "\xF0\x9F\xA6\x99 \xE4\xB8\xAD\xE6\x96\x87 \xC3\x84pfel \xD0\xBD\xD0\xB5\xD1\x89\xD0\xBE",
    "<s></s><|endoftext|><|im_start|>user<|im_end|><unk>",
    "\xE1\x9E\x80\xE1\x9E\xB6 \xCC\x81\xCC\x82 \xE2\x80\x8D \xEF\xBB\xBF",
    "I'VE we'Re THEY'LL 3333333333 1.5e-10",
};

std::string mutate(std::mt19937& rng, std::string s) {
    std::uniform_int_distribution<int> op(0, 5), byte(0, 255);
    const int n_ops = 1 + static_cast<int>(rng() % 6);
    for (int k = 0; k < n_ops; ++k) {
        const size_t pos = s.empty() ? 0 : rng() % (s.size() + 1);
        switch (op(rng)) {
            case 0:
                s.insert(pos, 1, static_cast<char>(byte(rng)));
                break;  // any byte
            case 1:
                if (!s.empty() && pos < s.size())
                    s.erase(pos, 1 + rng() % 3);  // may cut a character
                break;
            case 2:
                if (pos < s.size()) s[pos] = static_cast<char>(byte(rng));
                break;
            case 3:
                s.insert(pos, kSeeds[rng() % std::size(kSeeds)]);
                break;
            case 4:
                s.insert(pos, std::string(1 + rng() % 40, " \n\t"[rng() % 3]));
                break;
            default:
                s += s.substr(0, std::min<size_t>(s.size(), 64));
                break;
        }
    }
    if (s.size() > 2048) s.resize(2048);
    return s;
}

// Whether every byte of `s` has a byte token, so any text made of them can be
// spelled (Falcon's vocabulary, for one, lacks some control characters).
bool representable(const text::Vocab& v, const std::string& s) {
    for (char c : s)
        if (v.byte_token(static_cast<uint8_t>(c)) == text::kNoToken) return false;
    return true;
}

TEST(TokenizerFuzz, RandomBytesNeverBreakTokenizeOrDetokenize) {
    std::vector<std::string> files;
    for (const auto& e : std::filesystem::directory_iterator(test::data_path("tokenizer")))
        if (e.path().extension() == ".gguf") files.push_back(e.path().string());
    std::sort(files.begin(), files.end());
    ASSERT_GE(files.size(), 11u);

    std::mt19937 rng(20260115);
    const int kPerVocab = 1000;  // 11,000 strings in all, each both ways: about a second
    for (const std::string& path : files) {
        SCOPED_TRACE(path);
        auto f = gguf::File::open(path);
        ASSERT_TRUE(f.ok()) << f.error().message;
        auto tok = text::Tokenizer::load(*f);
        ASSERT_TRUE(tok.ok()) << tok.error().message;

        for (int i = 0; i < kPerVocab; ++i) {
            std::string s;
            if (i % 4 == 0) {
                s.resize(rng() % 64);
                for (char& c : s) c = static_cast<char>(rng());
            } else {
                s = mutate(rng, kSeeds[rng() % std::size(kSeeds)]);
            }
            for (bool parse_special : {false, true}) {
                const auto ids =
                    tok->tokenize(s, {.add_special = true, .parse_special = parse_special});
                for (TokenId id : ids) ASSERT_TRUE(tok->vocab().valid(id));
                const std::string out = tok->detokenize(ids, {.special = (i & 1) != 0});
                ASSERT_TRUE(text::utf8_is_valid(out));
                if (!parse_special && !(i & 1) &&
                    representable(tok->vocab(), text::utf8_sanitize(s))) {
                    // Plain text comes back as its sanitised self.
                    ASSERT_EQ(out, text::utf8_sanitize(s));
                }
                text::StreamDecoder dec(*tok);
                for (TokenId id : ids) ASSERT_TRUE(text::utf8_is_valid(dec.push(id)));
                ASSERT_TRUE(text::utf8_is_valid(dec.finish()));
            }
        }
    }
}

}  // namespace
}  // namespace strata
