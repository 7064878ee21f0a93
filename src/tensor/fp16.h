#pragma once
// IEEE half and bfloat16 conversions, bit-exact with the reference implementation:
// half -> float is exact; float -> half and float -> bf16 round to nearest even.

#include <cstdint>

namespace strata {

float fp16_to_fp32(uint16_t h);
uint16_t fp32_to_fp16(float f);
float bf16_to_fp32(uint16_t h);
uint16_t fp32_to_bf16(float f);

}  // namespace strata
