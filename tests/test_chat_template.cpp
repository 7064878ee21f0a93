// Chat templates against the reference: every case of cases.jsonl (rendered by
// Python's Jinja2 as Hugging Face's `apply_chat_template` does) must match byte
// for byte; all 65 real templates must parse and render; mutated templates must
// fail cleanly; and `strata template` must print exactly the rendered prompt.

#include "test_util.h"
#include "text/chat_template.h"
#include "text/jinja_json.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>

namespace strata::text {
namespace {

using nlohmann::ordered_json;

std::string read_text(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

jinja::Clock reference_clock() {
    auto t = parse_datetime("2026-01-15T09:30");
    return fixed_clock(*t);
}

std::vector<std::filesystem::path> template_files() {
    std::vector<std::filesystem::path> files;
    for (const auto& e : std::filesystem::directory_iterator(test::data_path("chat-templates/templates")))
        if (e.path().extension() == ".jinja") files.push_back(e.path());
    std::sort(files.begin(), files.end());
    return files;
}

const ordered_json kConversation = ordered_json::parse(R"([
    {"role": "system", "content": "You are a concise assistant."},
    {"role": "user", "content": "Hello!"},
    {"role": "assistant", "content": "Hi! How can I help?"},
    {"role": "user", "content": "Traduis « bonjour » en 日本語 🦙"}])");

TEST(ChatTemplate, AllReferenceCasesMatchByteForByte) {
    std::ifstream in(test::data_path("chat-templates/cases.jsonl"));
    ASSERT_TRUE(in.good());
    std::string line;
    int n = 0, passed = 0;
    while (std::getline(in, line)) {
        if (line.empty()) continue;
        ++n;
        auto c = ordered_json::parse(line);
        const std::string name = c["template"].get<std::string>() + " / " + c["case"].get<std::string>() +
                                 (c["add_generation_prompt"].get<bool>() ? " / gen" : " / no-gen");
        auto t = ChatTemplate::parse(c["source"].get<std::string>());
        ASSERT_TRUE(t.ok()) << name << ": " << t.error().message;
        auto out = t->render({.messages = c["messages"],
                              .add_generation_prompt = c["add_generation_prompt"].get<bool>(),
                              .bos_token = c["bos_token"].get<std::string>(),
                              .eos_token = c["eos_token"].get<std::string>(),
                              .clock = reference_clock()});
        ASSERT_TRUE(out.ok()) << name << ": " << out.error().message;
        EXPECT_EQ(*out, c["expected"].get<std::string>()) << name;
        if (*out == c["expected"].get<std::string>()) ++passed;
    }
    EXPECT_EQ(n, 268);
    EXPECT_EQ(passed, n);
}

TEST(ChatTemplate, EveryRealTemplateParsesAndRenders) {
    const auto files = template_files();
    ASSERT_EQ(files.size(), 65u);
    int rendered = 0;
    for (const auto& f : files) {
        auto t = ChatTemplate::parse(read_text(f.string()));
        ASSERT_TRUE(t.ok()) << f.filename() << ": " << t.error().message;
        ChatInputs in{.messages = ordered_json::array({kConversation[1], kConversation[2], kConversation[3]}),
                      .bos_token = "<s>", .eos_token = "</s>", .clock = reference_clock()};
        // Firefunction v2 reads `functions` and `datetime`, which its callers always pass.
        if (f.filename() == "fireworks-ai-llama-3-firefunction-v2.jinja")
            in.extra = {{"functions", "[]"}, {"datetime", "2026-01-15"}};
        auto out = t->render(in);
        EXPECT_TRUE(out.ok()) << f.filename() << ": " << out.error().message;
        if (out.ok()) {
            EXPECT_NE(out->find("Hi! How can I help?"), std::string::npos) << f.filename();
            ++rendered;
        }
    }
    EXPECT_EQ(rendered, 65);
}

TEST(ChatTemplate, ToolsAndToolCallsRender) {
    // Hermes 2 Pro: tools as JSON in the system prompt, tool calls as JSON
    // objects, tool results wrapped in <tool_response>; checked against Jinja2.
    auto t = ChatTemplate::parse(read_text(
        test::data_path("chat-templates/templates/NousResearch-Hermes-2-Pro-Llama-3-8B-tool_use.jinja")));
    ASSERT_TRUE(t.ok());
    auto in = ordered_json::parse(R"({
      "messages": [
        {"role": "user", "content": "Weather?"},
        {"role": "assistant", "tool_calls": [{"type": "function", "function": {"name": "w", "arguments": {"city": "Zürich"}}}]},
        {"role": "tool", "name": "w", "content": "21"}],
      "tools": [{"type": "function", "function": {"name": "w", "description": "Weather", "parameters":
                 {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}]})");
    auto out = t->render({.messages = in["messages"], .add_generation_prompt = true, .bos_token = "<s>",
                          .eos_token = "</s>", .extra = {{"tools", in["tools"]}}});
    ASSERT_TRUE(out.ok()) << out.error().message;
    EXPECT_NE(out->find("<tool_call>\n{\"name\": \"w\", \"arguments\": {\"city\": \"Zürich\"}}\n</tool_call>"),
              std::string::npos)
        << *out;
    EXPECT_NE(out->find("<tool_response>\n21\n</tool_response>"), std::string::npos) << *out;
    EXPECT_NE(out->find("\"required\": [\"city\"]"), std::string::npos) << *out;
}

TEST(ChatTemplate, ChatMLFallback) {
    auto out = ChatTemplate::chatml().render({.messages = kConversation, .add_generation_prompt = true});
    ASSERT_TRUE(out.ok());
    EXPECT_EQ(*out,
              "<|im_start|>system\nYou are a concise assistant.<|im_end|>\n<|im_start|>user\nHello!<|im_end|>\n"
              "<|im_start|>assistant\nHi! How can I help?<|im_end|>\n<|im_start|>user\nTraduis « bonjour » en "
              "日本語 🦙<|im_end|>\n<|im_start|>assistant\n");
}

TEST(ChatTemplate, InvalidUtf8InMessagesIsReplaced) {
    ordered_json msgs = ordered_json::array();
    msgs.push_back({{"role", "user"}, {"content", std::string("bad \xff byte")}});
    auto out = ChatTemplate::chatml().render({.messages = msgs, .add_generation_prompt = false});
    ASSERT_TRUE(out.ok());
    EXPECT_EQ(*out, "<|im_start|>user\nbad \xef\xbf\xbd byte<|im_end|>\n");
}

TEST(ChatTemplate, RenderingIsFast) {
    // Not a benchmark (tests never assert on time); a guard against accidental
    // quadratic behaviour: 200 renders of a large real template must finish.
    auto t = ChatTemplate::parse(read_text(test::data_path("chat-templates/templates/openai-gpt-oss-120b.jinja")));
    ASSERT_TRUE(t.ok());
    ChatInputs in{.messages = kConversation, .clock = reference_clock()};
    for (int k = 0; k < 200; ++k) ASSERT_TRUE(t->render(in).ok());
}

// Mutations of the real templates through parse and render: whatever the input,
// the result is an output or an error value, never a crash or a hang.
TEST(ChatTemplateFuzz, MutatedRealTemplatesFailCleanly) {
    std::vector<std::string> sources;
    for (const auto& f : template_files()) sources.push_back(read_text(f.string()));
    static const char* const kFragments[] = {"{{", "}}", "{%", "%}", "{#", "#}", "-", "(", ")", "[", "]", "{", "}",
                                             "|", ".", ",", "'", "\"", "\\", " if ", " else ", " for ", " in ",
                                             "endif", "endfor", "endmacro", "loop", "ns", "namespace(", "caller()",
                                             "range(99999)", "* 99999", "recursive", "\xff", "\n"};
    std::mt19937 rng(1234);
    auto pick = [&](size_t n) { return static_cast<size_t>(rng() % std::max<size_t>(n, 1)); };
    jinja::TemplateOptions small;
    small.limits.max_loop_iterations = 20'000;
    small.limits.max_output_bytes = 1 << 20;
    small.limits.max_total_bytes = 8 << 20;
    small.limits.max_items = 20'000;
    small.limits.max_call_depth = 40;
    int parsed = 0, rendered = 0;
    const auto start = std::chrono::steady_clock::now();
    for (int iter = 0; iter < 3000; ++iter) {
        std::string s = sources[pick(sources.size())];
        const int n_mut = 1 + static_cast<int>(pick(4));
        for (int m = 0; m < n_mut && !s.empty(); ++m) {
            const size_t at = pick(s.size());
            switch (pick(4)) {
                case 0: s.erase(at, 1 + pick(20)); break;
                case 1: s.insert(at, kFragments[pick(std::size(kFragments))]); break;
                case 2: {
                    const size_t from = pick(s.size()), len = std::min<size_t>(1 + pick(200), s.size() - from);
                    s.insert(at, s.substr(from, len));
                    break;
                }
                default: s[at] = static_cast<char>(rng() & 0xff);
            }
        }
        auto t = jinja::Template::parse(s, small);
        if (!t.ok()) {
            EXPECT_FALSE(t.error().message.empty());
            continue;
        }
        ++parsed;
        jinja::Value vars = jinja::Value::new_dict();
        vars.dict->set("messages", jinja::from_json(kConversation));
        vars.dict->set("add_generation_prompt", jinja::Value::boolean(true));
        vars.dict->set("bos_token", jinja::Value::string("<s>"));
        auto out = t->render(vars, reference_clock());
        if (out.ok()) ++rendered;
        else EXPECT_FALSE(out.error().message.empty());
    }
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    std::printf("fuzz: 3000 mutated templates, %d parsed, %d rendered, %.2f s\n", parsed, rendered, secs);
    EXPECT_GT(parsed, 0);
}

std::string shell_quote(const std::string& s) {
    std::string out = "'";
    for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
    return out + "'";
}

TEST(ChatTemplateCli, PrintsThePromptExactly) {
    test::TempDir dir;
    const std::string tmpl = dir.file("t.jinja");
    std::ofstream(tmpl) << "{{ bos_token }}{% for m in messages %}[{{ m.role }}] {{ m.content }}\n{% endfor %}"
                           "{% if add_generation_prompt %}[assistant]{% endif %}{{ strftime_now('%d %B %Y') }}";
    const std::string msgs = shell_quote(R"([{"role":"user","content":"Hi « there »"}])");
    auto r = test::run_strata("template --template " + tmpl + " --bos-token '<s>' --messages " + msgs +
                              " --now 2026-01-15T09:30");
    EXPECT_EQ(r.exit_code, 0) << r.out;
    EXPECT_EQ(r.out, "<s>[user] Hi « there »\n[assistant]15 January 2026");
    r = test::run_strata("template --template " + tmpl + " --messages " + msgs +
                         " --no-generation-prompt --now 2026-01-15T09:30");
    EXPECT_EQ(r.out, "[user] Hi « there »\n15 January 2026");
}

TEST(ChatTemplateCli, ReadsTheTemplateAndTokensFromAGguf) {
    // Phi-3's vocabulary file carries its chat template; BOS is <s>.
    const std::string msgs = shell_quote(R"([{"role":"user","content":"Hi"}])");
    auto r = test::run_strata("template --model " + test::data_path("tokenizer/ggml-vocab-phi-3.gguf") +
                              " --messages " + msgs);
    EXPECT_EQ(r.exit_code, 0) << r.out;
    EXPECT_EQ(r.out, "<s><|user|>\nHi<|end|>\n<|assistant|>\n");
}

TEST(ChatTemplateCli, FallsBackToChatMLWhenTheGgufHasNoTemplate) {
    const std::string msgs = shell_quote(R"([{"role":"user","content":"Hi"}])");
    auto r = test::run_strata("template --model " + test::data_path("real/stories260K.gguf") + " --messages " + msgs);
    EXPECT_EQ(r.exit_code, 0) << r.out;
    EXPECT_NE(r.out.find("no tokenizer.chat_template; using ChatML"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"), std::string::npos) << r.out;
}

TEST(ChatTemplateCli, BadInputIsAnError) {
    test::TempDir dir;
    const std::string tmpl = dir.file("bad.jinja");
    std::ofstream(tmpl) << "ok\n{% if %}";
    const std::string msgs = shell_quote(R"([{"role":"user","content":"Hi"}])");
    auto r = test::run_strata("template --template " + tmpl + " --messages " + msgs);
    EXPECT_EQ(r.exit_code, 1);
    EXPECT_NE(r.out.find("error: "), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("line 2, column 7"), std::string::npos) << r.out;
    r = test::run_strata("template --template " + tmpl + " --messages '{not json'");
    EXPECT_EQ(r.exit_code, 1);
    EXPECT_NE(r.out.find("error: --messages is not valid JSON"), std::string::npos) << r.out;
    r = test::run_strata("template --template " + dir.file("missing.jinja") + " --messages '[]'");
    EXPECT_EQ(r.exit_code, 1);
    EXPECT_NE(r.out.find("error: cannot read"), std::string::npos) << r.out;
    std::ofstream(dir.file("raise.jinja")) << "{{ raise_exception('roles must alternate') }}";
    r = test::run_strata("template --template " + dir.file("raise.jinja") + " --messages '[]'");
    EXPECT_EQ(r.exit_code, 1);
    EXPECT_NE(r.out.find("roles must alternate"), std::string::npos) << r.out;
    r = test::run_strata("template --template " + tmpl + " --messages '[]' --now yesterday");
    EXPECT_EQ(r.exit_code, 1);
    EXPECT_NE(r.out.find("error: --now"), std::string::npos) << r.out;
}

}  // namespace
}  // namespace strata::text
