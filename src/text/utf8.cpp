#include "text/utf8.h"

namespace strata::text {

Utf8Step utf8_step(std::string_view s, size_t i) {
    const auto b0 = static_cast<uint8_t>(s[i]);
    if (b0 < 0x80) return {.cp = b0, .len = 1, .valid = true};

    // The lead byte fixes the length and the allowed range of the second byte;
    // the narrowed ranges exclude overlong forms, surrogates and code points
    // past U+10FFFF (Unicode table 3-7).
    size_t n = 0;
    uint8_t lo = 0x80, hi = 0xBF;
    uint32_t cp = 0;
    if (b0 >= 0xC2 && b0 <= 0xDF) {
        n = 2, cp = b0 & 0x1F;
    } else if (b0 >= 0xE0 && b0 <= 0xEF) {
        n = 3, cp = b0 & 0x0F;
        if (b0 == 0xE0) lo = 0xA0;
        if (b0 == 0xED) hi = 0x9F;
    } else if (b0 >= 0xF0 && b0 <= 0xF4) {
        n = 4, cp = b0 & 0x07;
        if (b0 == 0xF0) lo = 0x90;
        if (b0 == 0xF4) hi = 0x8F;
    } else {
        return {};  // a continuation byte or a byte that never appears in UTF-8
    }

    for (size_t k = 1; k < n; ++k) {
        if (i + k >= s.size()) return {.len = k, .incomplete = true};
        const auto b = static_cast<uint8_t>(s[i + k]);
        if (b < lo || b > hi) return {.len = k};  // the maximal subpart ends before `b`
        lo = 0x80, hi = 0xBF;
        cp = (cp << 6) | (b & 0x3F);
    }
    return {.cp = cp, .len = n, .valid = true};
}

void utf8_append(std::string& out, uint32_t cp) {
    if ((cp >= 0xD800 && cp <= 0xDFFF) || cp > 0x10FFFF) cp = kReplacementChar;
    if (cp < 0x80) {
        out += static_cast<char>(cp);
    } else if (cp < 0x800) {
        out += static_cast<char>(0xC0 | (cp >> 6));
        out += static_cast<char>(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
        out += static_cast<char>(0xE0 | (cp >> 12));
        out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
        out += static_cast<char>(0x80 | (cp & 0x3F));
    } else {
        out += static_cast<char>(0xF0 | (cp >> 18));
        out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
        out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
        out += static_cast<char>(0x80 | (cp & 0x3F));
    }
}

bool utf8_is_valid(std::string_view s) {
    for (size_t i = 0; i < s.size();) {
        const Utf8Step st = utf8_step(s, i);
        if (!st.valid) return false;
        i += st.len;
    }
    return true;
}

std::string utf8_sanitize(std::string_view s) {
    std::string out;
    out.reserve(s.size());
    size_t run = 0;  // start of the current run of valid bytes, copied in one go
    size_t i = 0;
    while (i < s.size()) {
        const Utf8Step st = utf8_step(s, i);
        if (st.valid) {
            i += st.len;
            continue;
        }
        out.append(s.substr(run, i - run));
        out += kReplacementUtf8;
        i += st.len;
        run = i;
    }
    out.append(s.substr(run));
    return out;
}

std::string Utf8Stream::push(std::string_view bytes) {
    pending_.append(bytes);
    std::string out;
    size_t run = 0;
    size_t i = 0;
    while (i < pending_.size()) {
        const Utf8Step st = utf8_step(pending_, i);
        if (st.valid) {
            i += st.len;
            continue;
        }
        if (st.incomplete) break;  // hold the tail until more bytes arrive
        out.append(pending_, run, i - run);
        out += kReplacementUtf8;
        i += st.len;
        run = i;
    }
    out.append(pending_, run, i - run);
    pending_.erase(0, i);
    return out;
}

std::string Utf8Stream::finish() {
    std::string out = utf8_sanitize(pending_);
    pending_.clear();
    return out;
}

}  // namespace strata::text
