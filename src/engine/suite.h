#pragma once
// Prompt suites for `strata validate`: the built-in ones (basic, reasoning,
// long, all) and suites read from JSON, with the checks each prompt's output
// must pass. The JSON schema (README.md, "strata validate"):
//
//   {"name": "my-suite",                       optional; the file's stem otherwise
//    "prompts": [{
//       "name": "factorial",                   required, unique
//       "prompt": "Write a Python function...", required, non-empty
//       "system": "You are terse.",            optional system message (chat only)
//       "max_tokens": 256,                     optional, >= 1 (default 256)
//       "expect": ["def", "return"],           each must occur (ASCII case-insensitive)
//       "must_not_contain": ["<|im_end|>"],    none may occur (ASCII case-insensitive)
//       "min_words": 20, "max_words": 400,     length bounds in words (repetition.h's words)
//       "max_repetition": 0.25                 word-trigram repetition at most this
//    }]}
//
// Unknown keys are errors, so a misspelt check ("expected") is not silently
// ignored.

#include "util/result.h"

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace strata {

struct SuitePrompt {
    std::string name, prompt, system;
    int max_tokens = 256;
    std::vector<std::string> expect, must_not_contain;
    std::optional<int64_t> min_words, max_words;
    std::optional<double> max_repetition;
};

struct Suite {
    std::string name;
    std::vector<SuitePrompt> prompts;
};

// "basic", "reasoning", "long" or "all" (the three in that order); nullopt for
// any other name.
std::optional<Suite> builtin_suite(std::string_view name);

// A suite from JSON text; errors name `source` and the offending prompt and key.
Result<Suite> parse_suite(std::string_view json_text, const std::string& source);
// `builtin_suite(spec)`, else the JSON file at path `spec`.
Result<Suite> load_suite(const std::string& spec);

struct CheckResult {
    std::string name;  // "expect 'def'", "min_words 20", ...
    bool pass = false;
    std::string detail;  // what was found, when it failed
};

// Every check `p` asks for, on `text`. With `length_capped` (a token cap below
// the prompt's own `max_tokens` cut the text short) `min_words` is not checked:
// the cap, not the model, decided the length.
std::vector<CheckResult> run_checks(const SuitePrompt& p, std::string_view text,
                                    bool length_capped);

}  // namespace strata
