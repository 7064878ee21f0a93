#pragma once
// Stop strings matched across token boundaries: generated text goes in piece by
// piece, and what comes out is safe to show — text that cannot be the start of a
// stop string. A stop string itself is never emitted; the text before it is.

#include <string>
#include <string_view>
#include <vector>

namespace strata {

class StopMatcher {
public:
    explicit StopMatcher(std::vector<std::string> stops);

    // Adds generated text; returns the part that can be emitted now.
    std::string push(std::string_view piece);
    // At the end of generation: whatever was held back (nothing once stopped).
    std::string flush();
    bool stopped() const { return stopped_; }
    // The stop string that matched, when stopped.
    const std::string& matched() const { return matched_; }

private:
    std::vector<std::string> stops_;
    std::string held_;
    std::string matched_;
    bool stopped_ = false;
};

}  // namespace strata
