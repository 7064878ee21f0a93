// The built-in suites mirror the validation protocol users of MoE offloading
// know (basic, reasoning, long-form prompts with their token budgets); their
// checks are deliberately loose — words any correct answer uses — so a failure
// means the answer is wrong or degenerate, not merely phrased differently.

#include "engine/suite.h"

#include "engine/repetition.h"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <set>

namespace strata {
namespace {

// A quarter of all word trigrams repeating means the text goes round in circles.
constexpr double kLoopRepetition = 0.25;

// Special-token texts in an answer mean the chat template and the model disagree.
const std::vector<std::string> kLeakedTokens = {"<|im_start|>", "<|im_end|>", "<|endoftext|>"};

SuitePrompt prompt(std::string name, std::string text, int max_tokens,
                   std::vector<std::string> expect,
                   std::optional<int64_t> min_words = std::nullopt) {
    return {.name = std::move(name),
            .prompt = std::move(text),
            .max_tokens = max_tokens,
            .expect = std::move(expect),
            .must_not_contain = kLeakedTokens,
            .min_words = min_words,
            .max_repetition = kLoopRepetition};
}

Suite basic() {
    return {
        "basic",
        {prompt("greeting", "Hello! Please introduce yourself in two or three sentences.", 128, {},
                5),
         prompt("factorial",
                "Write a Python function that returns the factorial of a non-negative integer n, "
                "with a short "
                "docstring.",
                256, {"def", "factorial", "return"}),
         prompt("binary_search", "Explain how binary search works and state its time complexity.",
                300, {"sorted", "log"})}};
}

Suite reasoning() {
    return {"reasoning",
            {prompt("water_jugs",
                    "You have a 3-gallon jug, a 5-gallon jug and an unlimited supply of water. How "
                    "can you measure "
                    "exactly 4 gallons? Explain each step.",
                    512, {"fill", "4"}),
             prompt("chat_architecture",
                    "Design the architecture of a real-time chat application for one million "
                    "concurrent users. "
                    "Describe the main components and how a message flows between them.",
                    512, {"websocket", "database"}),
             prompt("sorting",
                    "Compare bubble sort and quicksort: how each works, their best, average and "
                    "worst-case time "
                    "complexity, and when you would use each.",
                    512, {"bubble", "quick", "o(n"})}};
}

Suite long_form() {
    return {
        "long",
        {prompt("short_story",
                "Write a short story about a lighthouse keeper who finds a message in a bottle.",
                800, {"lighthouse"}, 200),
         prompt("rest_api_docs",
                "Write the documentation of a REST API that manages a library's books: every "
                "endpoint with its "
                "method, path, request and response bodies, status codes and errors.",
                1000, {"/books", "post", "delete"}, 200),
         prompt("renewable_energy",
                "Analyse the advantages and challenges of renewable energy: solar, wind and "
                "hydroelectric power, "
                "their cost, reliability, storage and environmental impact.",
                600, {"solar", "wind", "storage"}, 150)}};
}

using json = nlohmann::json;

Result<std::vector<std::string>> string_list(const json& v, const std::string& where) {
    if (!v.is_array()) return err("{}: expected an array of strings", where);
    std::vector<std::string> out;
    for (const json& s : v) {
        if (!s.is_string() || s.get<std::string>().empty())
            return err("{}: expected non-empty strings", where);
        out.push_back(s.get<std::string>());
    }
    return out;
}

Result<int64_t> count(const json& v, const std::string& where, int64_t min) {
    if (!v.is_number_integer() || v.get<int64_t>() < min)
        return err("{}: expected an integer >= {}", where, min);
    return v.get<int64_t>();
}

Result<SuitePrompt> parse_prompt(const json& j, const std::string& where) {
    if (!j.is_object()) return err("{}: expected an object", where);
    SuitePrompt p;
    for (const auto& [key, v] : j.items()) {
        const std::string at = where + "." + key;
        if (key == "name" || key == "prompt" || key == "system") {
            if (!v.is_string()) return err("{}: expected a string", at);
            (key == "name" ? p.name : key == "prompt" ? p.prompt : p.system) = v.get<std::string>();
        } else if (key == "max_tokens") {
            auto n = count(v, at, 1);
            if (!n) return n.error();
            if (*n > 1'000'000) return err("{}: {} is more than any context holds", at, *n);
            p.max_tokens = static_cast<int>(*n);
        } else if (key == "expect" || key == "must_not_contain") {
            auto l = string_list(v, at);
            if (!l) return l.error();
            (key == "expect" ? p.expect : p.must_not_contain) = std::move(*l);
        } else if (key == "min_words" || key == "max_words") {
            auto n = count(v, at, 0);
            if (!n) return n.error();
            (key == "min_words" ? p.min_words : p.max_words) = *n;
        } else if (key == "max_repetition") {
            if (!v.is_number() || v.get<double>() < 0 || v.get<double>() > 1)
                return err("{}: expected a number from 0 to 1", at);
            p.max_repetition = v.get<double>();
        } else {
            return err(
                "{}: unknown key (expected name, prompt, system, max_tokens, expect, "
                "must_not_contain, "
                "min_words, max_words, max_repetition)",
                at);
        }
    }
    if (p.name.empty()) return err("{}.name: required, a non-empty string", where);
    if (p.prompt.empty())
        return err("{} ('{}').prompt: required, a non-empty string", where, p.name);
    if (p.min_words && p.max_words && *p.min_words > *p.max_words)
        return err("{} ('{}'): min_words {} is above max_words {}", where, p.name, *p.min_words,
                   *p.max_words);
    return p;
}

std::string lower(std::string_view s) {
    std::string out(s);
    for (char& c : out) {
        if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    }
    return out;
}

}  // namespace

std::optional<Suite> builtin_suite(std::string_view name) {
    if (name == "basic") return basic();
    if (name == "reasoning") return reasoning();
    if (name == "long") return long_form();
    if (name == "all") {
        Suite all{"all", {}};
        for (Suite s : {basic(), reasoning(), long_form()})
            all.prompts.insert(all.prompts.end(), s.prompts.begin(), s.prompts.end());
        return all;
    }
    return std::nullopt;
}

Result<Suite> parse_suite(std::string_view json_text, const std::string& source) {
    const json j = json::parse(json_text, nullptr, false);
    if (j.is_discarded()) return err("suite '{}': not valid JSON", source);
    if (!j.is_object()) return err("suite '{}': expected an object with \"prompts\"", source);
    Suite s{.name = std::filesystem::path(source).stem().string()};
    for (const auto& [key, v] : j.items()) {
        if (key == "name") {
            if (!v.is_string() || v.get<std::string>().empty())
                return err("suite '{}': name: expected a non-empty string", source);
            s.name = v.get<std::string>();
        } else if (key != "prompts") {
            return err("suite '{}': {}: unknown key (expected name, prompts)", source, key);
        }
    }
    if (!j.contains("prompts") || !j["prompts"].is_array() || j["prompts"].empty())
        return err("suite '{}': prompts: required, a non-empty array", source);
    std::set<std::string> names;
    for (size_t i = 0; i < j["prompts"].size(); ++i) {
        auto p = parse_prompt(j["prompts"][i], fmt::format("suite '{}': prompts[{}]", source, i));
        if (!p) return p.error();
        if (!names.insert(p->name).second)
            return err("suite '{}': prompts[{}].name: '{}' is used twice", source, i, p->name);
        s.prompts.push_back(std::move(*p));
    }
    return s;
}

Result<Suite> load_suite(const std::string& spec) {
    if (auto s = builtin_suite(spec)) return *s;
    std::ifstream in(spec, std::ios::binary);
    if (!in)
        return err("--suite '{}': neither basic, reasoning, long, all nor a readable JSON file",
                   spec);
    const std::string text{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
    return parse_suite(text, spec);
}

std::vector<CheckResult> run_checks(const SuitePrompt& p, std::string_view text,
                                    bool length_capped) {
    std::vector<CheckResult> out;
    const std::string low = lower(text);
    for (const std::string& k : p.expect) {
        const bool found = low.find(lower(k)) != std::string::npos;
        out.push_back({fmt::format("expect '{}'", k), found, found ? "" : "not found"});
    }
    for (const std::string& k : p.must_not_contain) {
        const bool found = low.find(lower(k)) != std::string::npos;
        out.push_back({fmt::format("must_not_contain '{}'", k), !found, found ? "found" : ""});
    }
    const std::vector<std::string> words = split_words(text);
    const auto n_words = static_cast<int64_t>(words.size());
    if (p.min_words && !length_capped) {
        const bool ok = n_words >= *p.min_words;
        out.push_back({fmt::format("min_words {}", *p.min_words), ok,
                       ok ? "" : fmt::format("{} words", n_words)});
    }
    if (p.max_words) {
        const bool ok = n_words <= *p.max_words;
        out.push_back({fmt::format("max_words {}", *p.max_words), ok,
                       ok ? "" : fmt::format("{} words", n_words)});
    }
    if (p.max_repetition) {
        const double r = ngram_repetition(std::span<const std::string>(words), 3);
        const bool ok = r <= *p.max_repetition;
        out.push_back({fmt::format("max_repetition {:.2f}", *p.max_repetition), ok,
                       ok ? "" : fmt::format("repetition {:.3f}", r)});
    }
    return out;
}

}  // namespace strata
