#include "bpe_train.h"

#include "text/pretokenize.h"
#include "text/utf8.h"

#include <fmt/format.h>

#include <fstream>
#include <iterator>
#include <map>
#include <sstream>
#include <unordered_map>

namespace strata::train {

Result<std::string> read_corpus(const std::vector<std::string>& paths) {
    std::string all;
    for (const std::string& p : paths) {
        std::ifstream in(p, std::ios::binary);
        if (!in) return err("{}: cannot read the corpus file", p);
        all.append(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
        if (!all.empty() && all.back() != '\n') all.push_back('\n');
    }
    if (all.empty()) return err("the corpus is empty");
    return all;
}

std::vector<int32_t> encode_lines(const text::Tokenizer& tok, std::string_view text) {
    std::vector<int32_t> ids;
    for (size_t pos = 0; pos < text.size();) {
        size_t end = text.find('\n', pos);
        end = end == std::string_view::npos ? text.size() : end + 1;
        const auto line = tok.tokenize(text.substr(pos, end - pos));
        ids.insert(ids.end(), line.begin(), line.end());
        pos = end;
    }
    return ids;
}

Result<text::VocabSpec> train_bpe(std::string_view corpus, int n_vocab) {
    constexpr int kSpecials = 3;
    if (n_vocab < 256 + kSpecials)
        return err("--vocab {} is below the 256 byte tokens and {} control tokens", n_vocab,
                   kSpecials);
    auto pre = text::PreTokenizer::create(kPreTokenizer);
    if (!pre) return pre.error();

    // Word frequencies; a word is then a sequence of token ids that merges shorten.
    std::unordered_map<std::string_view, int64_t> freq;
    for (std::string_view w : pre->split(corpus)) ++freq[w];
    struct Word {
        std::vector<int32_t> ids;
        int64_t count;
    };
    std::vector<Word> words;
    words.reserve(freq.size());
    for (const auto& [w, n] : freq) {
        Word word{{}, n};
        for (char ch : w) word.ids.push_back(static_cast<uint8_t>(ch));
        words.push_back(std::move(word));
    }
    // Hash-map iteration order is unspecified; sort so merges are reproducible.
    std::sort(words.begin(), words.end(),
              [](const Word& a, const Word& b) { return a.ids < b.ids; });

    text::VocabSpec spec;
    spec.model = "gpt2";
    spec.pre = kPreTokenizer;
    for (int b = 0; b < 256; ++b) {
        std::string s;
        text::utf8_append(s, text::gpt2_byte_to_cp(static_cast<uint8_t>(b)));
        spec.tokens.push_back(s);
    }
    std::map<std::string, int32_t> by_text;
    for (int b = 0; b < 256; ++b) by_text[spec.tokens[b]] = b;
    while (static_cast<int>(spec.tokens.size()) < n_vocab - kSpecials) {
        // Recounting every pair each round is simple and, at a few hundred merges
        // over tens of thousands of distinct words, takes seconds.
        std::unordered_map<uint64_t, int64_t> pairs;
        for (const Word& w : words) {
            for (size_t i = 0; i + 1 < w.ids.size(); ++i)
                pairs[(uint64_t(uint32_t(w.ids[i])) << 32) | uint32_t(w.ids[i + 1])] += w.count;
        }
        uint64_t best = 0;
        int64_t best_n = 0;
        for (const auto& [pr, n] : pairs) {
            if (n > best_n || (n == best_n && pr < best)) best = pr, best_n = n;
        }
        if (best_n < 2) break;  // nothing repeats: more merges would only memorise
        const auto left = static_cast<int32_t>(best >> 32),
                   right = static_cast<int32_t>(best & 0xffffffffu);
        // Two merge paths can spell the same text ("ab"+"c", "a"+"bc"): one token.
        std::string merged = spec.tokens[left] + spec.tokens[right];
        auto [it, fresh] = by_text.try_emplace(merged, static_cast<int32_t>(spec.tokens.size()));
        const int32_t id = it->second;
        spec.merges.push_back(spec.tokens[left] + " " + spec.tokens[right]);
        if (fresh) spec.tokens.push_back(std::move(merged));
        for (Word& w : words) {
            size_t o = 0;
            for (size_t i = 0; i < w.ids.size(); ++i) {
                if (i + 1 < w.ids.size() && w.ids[i] == left && w.ids[i + 1] == right) {
                    w.ids[o++] = id;
                    ++i;
                } else {
                    w.ids[o++] = w.ids[i];
                }
            }
            w.ids.resize(o);
        }
    }
    spec.token_types.assign(spec.tokens.size(), static_cast<int32_t>(text::TokenType::NORMAL));
    for (const char* s : {kEndOfText, kImStart, kImEnd}) {
        spec.tokens.emplace_back(s);
        spec.token_types.push_back(static_cast<int32_t>(text::TokenType::CONTROL));
    }
    const auto n = static_cast<int64_t>(spec.tokens.size());
    spec.bos = n - 3;  // <|endoftext|>, never added (add_bos = false), as Qwen does
    spec.eos = n - 3;
    spec.eot = n - 1;  // <|im_end|> ends a chat turn
    spec.pad = n - 3;
    spec.add_bos = false;
    spec.add_eos = false;
    return spec;
}

}  // namespace strata::train
