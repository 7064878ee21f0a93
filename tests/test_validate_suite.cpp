// `strata validate`'s suites: the built-in ones, the JSON schema and its
// errors (each naming the prompt and key at fault), and the checks.

#include "engine/suite.h"

#include <gtest/gtest.h>

#include <string>
#include <utility>

namespace strata {
namespace {

std::string error_of(const std::string& json) {
    auto s = parse_suite(json, "my.json");
    EXPECT_FALSE(s.ok()) << json;
    return s.ok() ? "" : s.error().message;
}

TEST(ValidateSuite, BuiltinSuites) {
    auto basic = builtin_suite("basic");
    ASSERT_TRUE(basic);
    ASSERT_EQ(basic->prompts.size(), 3u);
    EXPECT_EQ(basic->prompts[1].name, "factorial");
    auto long_form = builtin_suite("long");
    ASSERT_TRUE(long_form);
    ASSERT_EQ(long_form->prompts.size(), 3u);
    EXPECT_EQ(long_form->prompts[0].max_tokens, 800);
    EXPECT_EQ(long_form->prompts[1].max_tokens, 1000);
    EXPECT_EQ(long_form->prompts[2].max_tokens, 600);
    auto all = builtin_suite("all");
    ASSERT_TRUE(all);
    EXPECT_EQ(all->prompts.size(), 9u);
    EXPECT_EQ(all->prompts[3].name, "water_jugs");
    EXPECT_FALSE(builtin_suite("nope"));
}

TEST(ValidateSuite, ParsesEveryField) {
    auto s = parse_suite(R"({"name": "mine", "prompts": [
        {"name": "a", "prompt": "Say hi", "system": "Be brief.", "max_tokens": 12, "expect": ["hi"],
         "must_not_contain": ["bye"], "min_words": 1, "max_words": 9, "max_repetition": 0.5},
        {"name": "b", "prompt": "Count"}]})",
                         "dir/mine.json");
    ASSERT_TRUE(s.ok()) << s.error().message;
    EXPECT_EQ(s->name, "mine");
    ASSERT_EQ(s->prompts.size(), 2u);
    const SuitePrompt& a = s->prompts[0];
    EXPECT_EQ(a.system, "Be brief.");
    EXPECT_EQ(a.max_tokens, 12);
    EXPECT_EQ(a.expect, std::vector<std::string>{"hi"});
    EXPECT_EQ(a.must_not_contain, std::vector<std::string>{"bye"});
    EXPECT_EQ(a.min_words, 1);
    EXPECT_EQ(a.max_words, 9);
    EXPECT_EQ(a.max_repetition, 0.5);
    EXPECT_EQ(s->prompts[1].max_tokens, 256);  // the default
    EXPECT_FALSE(s->prompts[1].min_words);
    // Without a name, the file's stem.
    auto unnamed = parse_suite(R"({"prompts": [{"name": "a", "prompt": "x"}]})", "dir/stem.json");
    ASSERT_TRUE(unnamed.ok());
    EXPECT_EQ(unnamed->name, "stem");
}

TEST(ValidateSuite, ErrorsNameTheCulprit) {
    EXPECT_EQ(error_of("{"), "suite 'my.json': not valid JSON");
    EXPECT_NE(error_of("[]").find("expected an object"), std::string::npos);
    EXPECT_NE(error_of("{}").find("prompts: required"), std::string::npos);
    EXPECT_NE(error_of(R"({"prompts": [], "x": 1})").find("x: unknown key"), std::string::npos);
    // A second prompt after a good one, and the part of the message that names it.
    const std::pair<std::string, std::string> cases[] = {
        {R"({"name": "b", "prompt": "p", "expected": ["x"]})", "prompts[1].expected: unknown key"},
        {R"({"name": "b"})", "prompts[1] ('b').prompt: required"},
        {R"({"prompt": "p"})", "prompts[1].name: required"},
        {R"({"name": "ok", "prompt": "p"})", "prompts[1].name: 'ok' is used twice"},
        {R"({"name": "b", "prompt": "p", "max_tokens": 0})",
         "prompts[1].max_tokens: expected an integer >= 1"},
        {R"({"name": "b", "prompt": "p", "expect": "x"})", "prompts[1].expect: expected an array"},
        {R"({"name": "b", "prompt": "p", "max_repetition": 1.5})", "prompts[1].max_repetition"},
        {R"({"name": "b", "prompt": "p", "min_words": 5, "max_words": 2})",
         "min_words 5 is above max_words 2"},
    };
    for (const auto& [second, message] : cases) {
        const std::string json = R"({"prompts": [{"name": "ok", "prompt": "p"}, )" + second + "]}";
        EXPECT_NE(error_of(json).find(message), std::string::npos) << json;
    }
    auto missing = load_suite("/nonexistent/suite.json");
    ASSERT_FALSE(missing.ok());
    EXPECT_NE(missing.error().message.find("--suite '/nonexistent/suite.json'"), std::string::npos);
}

TEST(ValidateSuite, Checks) {
    SuitePrompt p{.name = "p",
                  .prompt = "x",
                  .max_tokens = 100,
                  .expect = {"Def", "return"},
                  .must_not_contain = {"<|im_end|>"},
                  .min_words = 5,
                  .max_words = 8,
                  .max_repetition = 0.25};
    auto all_pass = [](const std::vector<CheckResult>& r) {
        for (const CheckResult& c : r) {
            if (!c.pass) return false;
        }
        return true;
    };
    // Keywords match case-insensitively.
    const auto good = run_checks(p, "def f(n): RETURN n plus one", false);
    EXPECT_EQ(good.size(), 6u);
    EXPECT_TRUE(all_pass(good));
    // Words: "def", "im", "end".
    const auto bad = run_checks(p, "def<|im_end|>", false);
    ASSERT_EQ(bad.size(), 6u);
    EXPECT_TRUE(bad[0].pass);
    EXPECT_FALSE(bad[1].pass);  // no "return"
    EXPECT_EQ(bad[1].detail, "not found");
    EXPECT_FALSE(bad[2].pass);  // the leaked token
    EXPECT_EQ(bad[3].name, "min_words 5");
    EXPECT_FALSE(bad[3].pass);
    EXPECT_EQ(bad[3].detail, "3 words");
    // A loop fails max_repetition and max_words; a capped text skips min_words.
    const auto loop = run_checks(p, "def return def return def return def return def return", true);
    EXPECT_EQ(loop.size(), 5u);
    EXPECT_EQ(loop[3].name, "max_words 8");
    EXPECT_FALSE(loop[3].pass);
    EXPECT_FALSE(loop[4].pass);
    EXPECT_EQ(loop[4].detail, "repetition 0.750");  // 10 words: 8 trigrams, 2 distinct -> 6 / 8
}

}  // namespace
}  // namespace strata
