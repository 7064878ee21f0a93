#pragma once
// The trained model as a GGUF file the engine runs (qwen3moe), and back: the
// trainer reads its own export to compute reference outputs from exactly the
// weights the engine will see (F16-rounded where the file stores F16).

#include "model.h"
#include "text/vocab.h"
#include "util/result.h"

#include <string>

namespace strata::train {

// The ChatML template written to `tokenizer.chat_template`.
extern const char* const kChatTemplate;

struct ExportParams {
    std::string name = "strata-tiny-moe";
    bool f16 = true;  // matrices as F16 (norms and the router stay F32)
};

Status write_gguf(const Model& m, const text::VocabSpec& vocab, const ExportParams& p,
                  const std::string& path);

// The model's weights (as F32) and hyper-parameters from a file `write_gguf` wrote.
Result<Model> read_gguf(const std::string& path);

}  // namespace strata::train
