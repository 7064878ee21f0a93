// Fuzzes the GGUF reader and everything that reads a model's metadata before any
// weight is touched: `gguf::File` validation, `describe_model` (what `strata
// probe` prints), the tokenizer built from the file's vocabulary, and
// `Model::load` binding tensors to an architecture. The input is the whole file,
// parsed from libFuzzer's own buffer so that AddressSanitizer flags a read even
// one byte past its end (a mapping would hide that up to the page end).

#include "gguf/file.h"
#include "model/info.h"
#include "model/model.h"
#include "text/tokenizer.h"
#include "util/check.h"

#include <cstddef>
#include <cstdint>

using namespace strata;

namespace {

// Reads every metadata value as the typed getters would, so a value whose views
// point outside the file is touched here.
size_t touch_metadata(const gguf::File& f) {
    size_t n = 0;
    for (const gguf::KeyValue& kv : f.metadata()) {
        n += kv.value.to_string().size();
        if (kv.value.type != gguf::ValueType::ARRAY) continue;
        const gguf::Array& a = kv.value.array();
        if (a.elem_type == gguf::ValueType::STRING) {
            for (std::string_view s : a.strings) n += s.size();
        } else if (a.elem_type != gguf::ValueType::ARRAY && a.count > 0) {
            // The first and last elements bound the array's bytes.
            if (a.elem_type == gguf::ValueType::F32 || a.elem_type == gguf::ValueType::F64) {
                n += static_cast<size_t>(a.get_float(0) != 0) + static_cast<size_t>(a.get_float(a.count - 1) != 0);
            } else {
                n += static_cast<size_t>(a.get_int(0)) + static_cast<size_t>(a.get_int(a.count - 1));
            }
        }
    }
    for (const gguf::TensorInfo& t : f.tensors()) {
        CHECK(t.n_bytes <= f.file_size(), "a tensor larger than the file was accepted");
        n += t.shape_string().size();
        // The last byte of every tensor's data must be inside the buffer.
        if (t.n_bytes > 0) n += t.data[t.n_bytes - 1];
    }
    return n;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    auto f = gguf::File::open_memory(data, size, "fuzz.gguf");
    if (!f) {
        CHECK(!f.error().message.empty(), "an error without a message");
        return 0;
    }
    volatile size_t sink = touch_metadata(*f);
    (void)sink;

    const ModelInfo info = describe_model(*f);
    (void)info;

    if (auto tok = text::Tokenizer::load(*f)) {
        const auto ids = tok->tokenize("Hello <s> world\n\xE4\xB8\xAD 123", {.add_special = true, .parse_special = true});
        for (text::TokenId id : ids) CHECK(tok->vocab().valid(id), "the tokenizer made an id outside its vocabulary");
        const std::string back = tok->detokenize(ids, {.special = true});
        CHECK(text::utf8_is_valid(back), "detokenize made invalid UTF-8");
    }

    auto model = Model::load(*f);
    (void)model;
    return 0;
}
