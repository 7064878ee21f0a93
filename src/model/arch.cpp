#include "model/arch.h"

namespace strata {

const std::vector<const ArchSpec*>& all_archs() {
    static const std::vector<const ArchSpec*> archs = {&kArchLlama,    &kArchQwen2Moe, &kArchQwen3Moe, &kArchOlmoe,
                                                       &kArchDeepseek, &kArchPhimoe,   &kArchGptOss};
    return archs;
}

const ArchSpec* find_arch(const std::string& name) {
    for (const ArchSpec* a : all_archs()) {
        if (name == a->name) return a;
    }
    return nullptr;
}

}  // namespace strata
