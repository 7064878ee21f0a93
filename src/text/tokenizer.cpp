#include "text/tokenizer.h"

#include "gguf/file.h"
#include "text/bpe.h"
#include "text/spm.h"

#include <cctype>

namespace strata::text {

namespace {

constexpr std::string_view kSpaceMarker = "\xE2\x96\x81";  // U+2581, SentencePiece's space

// A run of input: raw text still to tokenise, or a special token already cut out.
struct Fragment {
    TokenId id;     // kNoToken for text
    size_t off, n;  // text only
};

bool is_space(char c) {
    return std::isspace(static_cast<unsigned char>(c)) != 0;
}

// Cuts the texts of special tokens out of `text`, longest token first: each one
// splits every text fragment at each of its occurrences. LSTRIP/RSTRIP tokens
// also take the whitespace on that side of them.
std::vector<Fragment> partition(const Vocab& vocab, std::string_view text, bool parse_special) {
    std::vector<Fragment> frags{{kNoToken, 0, text.size()}};
    std::vector<Fragment> next;
    for (const TokenId id : vocab.special_tokens()) {
        const uint32_t attr = vocab.attr(id);
        if (!parse_special && (attr & (ATTR_CONTROL | ATTR_UNKNOWN))) continue;
        const std::string& tok = vocab.text(id);
        if (text.find(tok) == std::string_view::npos) continue;  // the common case, cheaply

        next.clear();
        for (const Fragment& f : frags) {
            if (f.id != kNoToken) {
                next.push_back(f);
                continue;
            }
            const size_t end = f.off + f.n;
            size_t pos = f.off;
            while (pos < end) {
                const size_t at = text.substr(0, end).find(tok, pos);
                if (at == std::string_view::npos) break;
                size_t left_end = at;
                if (attr & ATTR_LSTRIP)
                    while (left_end > pos && is_space(text[left_end - 1])) --left_end;
                if (left_end > pos) next.push_back({kNoToken, pos, left_end - pos});
                next.push_back({id, 0, 0});
                pos = at + tok.size();
                if (attr & ATTR_RSTRIP)
                    while (pos < end && is_space(text[pos])) ++pos;
            }
            if (pos < end) next.push_back({kNoToken, pos, end - pos});
        }
        frags.swap(next);
    }
    return frags;
}

// llama.cpp's clean-up of tokenisation spaces: " ?" " !" " ." " ," lose the
// space; " ' " loses both; " 's" " 'm" " 're" " 've" lose the space before.
std::string clean_spaces(const std::string& in) {
    std::string a;
    for (size_t i = 0; i < in.size(); ++i) {
        const char x = in[i];
        if (i > 0 && in[i - 1] == ' ' && (x == '?' || x == '!' || x == '.' || x == ','))
            a.pop_back();
        a += x;
    }
    std::string b;
    for (size_t i = 0; i < a.size(); ++i) {
        const char x = a[i];
        if (i > 0 && x == '\'' && i + 1 < a.size() && a[i - 1] == ' ' && a[i + 1] == ' ') {
            b.pop_back();
            b += x;
            ++i;  // drop the space after
            continue;
        }
        b += x;
    }
    std::string c;
    for (size_t i = 0; i < b.size(); ++i) {
        const char x = b[i];
        if (i > 0 && b[i - 1] == ' ' && x == '\'' && i + 1 < b.size()) {
            const char x1 = b[i + 1];
            const char x2 = i + 2 < b.size() ? b[i + 2] : '\0';
            if (x1 == 's' || x1 == 'm' || (x1 == 'r' && x2 == 'e') || (x1 == 'v' && x2 == 'e'))
                c.pop_back();
        }
        c += x;
    }
    return c;
}

// What one token prints (as if `special`), per llama.cpp's `token_to_piece`.
std::string render(const Vocab& v, TokenId id) {
    const TokenData& t = v.token(id);
    if (t.attr & (ATTR_UNKNOWN | ATTR_CONTROL | ATTR_USER_DEFINED)) return t.text;
    if (t.attr & ATTR_BYTE) {
        // "<0xAB>"; a malformed byte token prints its text rather than a guess.
        if (t.text.size() == 6 && t.text.starts_with("<0x") && t.text.back() == '>' &&
            std::isxdigit(static_cast<unsigned char>(t.text[3])) &&
            std::isxdigit(static_cast<unsigned char>(t.text[4])))
            return std::string(1, static_cast<char>(std::stoi(t.text.substr(3, 2), nullptr, 16)));
        if (v.type() == VocabType::SPM) return t.text;
    }
    if (!(t.attr & (ATTR_NORMAL | ATTR_BYTE))) return {};  // unused and undefined tokens
    std::string out;
    if (v.type() == VocabType::SPM) {
        for (size_t i = 0; i < t.text.size();) {
            if (t.text.compare(i, kSpaceMarker.size(), kSpaceMarker) == 0) {
                out += ' ';
                i += kSpaceMarker.size();
            } else {
                out += t.text[i++];
            }
        }
        return out;
    }
    // Byte-level BPE: each character stands for one byte; a character outside
    // GPT-2's table (a hand-added token) stands for itself.
    for (size_t i = 0; i < t.text.size();) {
        const Utf8Step st = utf8_step(t.text, i);
        const int b = st.valid ? gpt2_cp_to_byte(st.cp) : -1;
        if (b >= 0)
            out += static_cast<char>(b);
        else
            out.append(t.text, i, st.len);
        i += st.len;
    }
    return out;
}

}  // namespace

Result<Tokenizer> Tokenizer::load(const gguf::File& f) {
    auto v = Vocab::load(f);
    if (!v) return v.error();
    return create(std::move(*v));
}

Result<Tokenizer> Tokenizer::create(Vocab vocab) {
    Tokenizer t;
    if (vocab.type() == VocabType::BPE) {
        auto pre = PreTokenizer::create(vocab.pre());
        if (!pre) return pre.error();
        t.pre_ = std::move(*pre);
    }
    t.pieces_.resize(vocab.size());
    for (size_t i = 0; i < vocab.size(); ++i) t.pieces_[i] = render(vocab, static_cast<TokenId>(i));
    t.vocab_ = std::move(vocab);
    return t;
}

std::vector<TokenId> Tokenizer::tokenize(std::string_view input, const TokenizeParams& p) const {
    std::string sanitized;
    std::string_view text = input;
    if (!utf8_is_valid(input)) {
        sanitized = utf8_sanitize(input);
        text = sanitized;
    }

    std::vector<TokenId> out;
    if (p.add_special && vocab_.add_bos()) out.push_back(vocab_.bos());
    const std::vector<Fragment> frags =
        text.empty() ? std::vector<Fragment>{} : partition(vocab_, text, p.parse_special);

    if (vocab_.type() == VocabType::SPM) {
        // The space prefix goes before the first text and before text that
        // follows a special token, as SentencePiece sees each as a new sentence.
        bool prev_special = true;
        std::string escaped;
        for (const Fragment& f : frags) {
            if (f.id != kNoToken) {
                out.push_back(f.id);
                prev_special = true;
                continue;
            }
            escaped.clear();
            if (vocab_.add_space_prefix() && prev_special) escaped += kSpaceMarker;
            for (char c : text.substr(f.off, f.n)) {
                if (c == ' ')
                    escaped += kSpaceMarker;
                else
                    escaped += c;
            }
            spm_tokenize(vocab_, escaped, out);
            prev_special = false;
        }
    } else {
        std::string encoded;
        for (const Fragment& f : frags) {
            if (f.id != kNoToken) {
                out.push_back(f.id);
                continue;
            }
            for (std::string_view word : pre_->split(text.substr(f.off, f.n))) {
                gpt2_byte_encode(word, encoded);
                bpe_tokenize_word(vocab_, encoded, out);
            }
        }
    }
    if (p.add_special && vocab_.add_eos()) out.push_back(vocab_.eos());
    return out;
}

std::string_view Tokenizer::piece(TokenId id, bool special) const {
    if (!vocab_.valid(id)) return {};
    const uint32_t attr = vocab_.attr(id);
    if (!special && (attr & (ATTR_UNKNOWN | ATTR_CONTROL)) && !(attr & ATTR_ALWAYS_RENDER))
        return {};
    return pieces_[static_cast<size_t>(id)];
}

std::string Tokenizer::detokenize(std::span<const TokenId> ids, const DetokenizeParams& p) const {
    StreamDecoder dec(*this, {.special = p.special, .remove_space_prefix = p.remove_space_prefix});
    std::string out;
    for (TokenId id : ids) out += dec.push(id);
    out += dec.finish();
    return p.clean_spaces ? clean_spaces(out) : out;
}

std::string StreamDecoder::push(TokenId id) {
    std::string_view bytes = tok_->piece(id, p_.special);
    if (bytes.empty()) return {};
    if (at_start_) {
        at_start_ = false;
        if (p_.remove_space_prefix && tok_->vocab().add_space_prefix() && bytes.front() == ' ')
            bytes.remove_prefix(1);
    }
    return utf8_.push(bytes);
}

std::string StreamDecoder::finish() {
    return utf8_.finish();
}

}  // namespace strata::text
