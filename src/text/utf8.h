#pragma once
// UTF-8 helpers for the tokenizers and for streaming text out of the engine.
// Decoding is strict (no overlong forms, no surrogates, nothing past U+10FFFF);
// an invalid sequence is replaced by one U+FFFD per maximal invalid subpart, the
// policy of Python's `bytes.decode(errors="replace")` and of the WHATWG decoder.

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace strata::text {

inline constexpr uint32_t kReplacementChar = 0xFFFD;
inline constexpr std::string_view kReplacementUtf8 = "\xEF\xBF\xBD";

// One step of decoding at `s[i]` (`i < s.size()`).
struct Utf8Step {
    uint32_t cp = kReplacementChar;  // the code point, or U+FFFD when not `valid`
    size_t len = 1;                  // bytes consumed: the sequence, or the invalid subpart
    bool valid = false;
    // The bytes from `i` to the end of `s` are a proper prefix of a valid sequence:
    // more input could complete it (streaming holds these bytes back).
    bool incomplete = false;
};

Utf8Step utf8_step(std::string_view s, size_t i);

// Appends the UTF-8 encoding of `cp` (U+FFFD for surrogates and values past U+10FFFF).
void utf8_append(std::string& out, uint32_t cp);

bool utf8_is_valid(std::string_view s);

// `s` with every invalid subpart (a truncated tail included) replaced by U+FFFD.
std::string utf8_sanitize(std::string_view s);

// Accumulates bytes and releases only complete, valid UTF-8: the bytes of a
// character split across pushes are held until the character is whole, and
// bytes that can never form a character are released as U+FFFD.
class Utf8Stream {
  public:
    std::string push(std::string_view bytes);
    // Releases whatever is held, a truncated sequence becoming U+FFFD.
    std::string finish();
    bool holding() const { return !pending_.empty(); }

  private:
    std::string pending_;
};

}  // namespace strata::text
