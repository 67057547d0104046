// Lesson: the stack or the heap (lessons.h).
#include <array>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include "escape.h"
#include "lessons.h"

namespace chapter29 {
namespace {

constexpr size_t kWords = 256;
using Keys = std::array<uint64_t, 8>;  // the mixer's 64 bytes of state

// splitmix64: the same pseudo-random words for the same seed.
uint64_t next_word(uint64_t& state) {
  uint64_t z = (state += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

void fill_words(uint64_t* words, uint64_t seed) {
  for (size_t i = 0; i < kWords; ++i) words[i] = next_word(seed);
}

Keys make_keys(uint64_t seed) {
  Keys keys;
  seed = ~seed;
  for (uint64_t& key : keys) key = next_word(seed) | 1;
  return keys;
}

// Both versions fold with this loop; only where `mix` lives differs.
template <class Mix>
uint64_t fold(const uint64_t* words, const uint64_t* squares, const Mix& mix) {
  uint64_t h = 0;
  for (size_t i = 0; i < kWords; ++i) h = mix(h, words[i] + squares[i], i);
  return h;
}

}  // namespace

uint64_t checksum_on_stack(uint64_t seed) {
  std::array<uint64_t, kWords> words;
  fill_words(words.data(), seed);
  std::array<uint64_t, kWords> squares;
  for (size_t i = 0; i < kWords; ++i) squares[i] = words[i] * words[i];
  const Keys keys = make_keys(seed);
  auto mix = [keys](uint64_t h, uint64_t v, size_t i) { return (h ^ v) * keys[i % keys.size()]; };
  escape(words.data());
  escape(squares.data());
  escape(&mix);
  return fold(words.data(), squares.data(), mix);
}

uint64_t checksum_on_heap(uint64_t seed) {
  auto words = std::make_unique<std::array<uint64_t, kWords>>();
  fill_words(words->data(), seed);
  std::vector<uint64_t> squares(kWords);
  for (size_t i = 0; i < kWords; ++i) squares[i] = (*words)[i] * (*words)[i];
  const Keys keys = make_keys(seed);
  const std::function<uint64_t(uint64_t, uint64_t, size_t)> mix =
      [keys](uint64_t h, uint64_t v, size_t i) { return (h ^ v) * keys[i % keys.size()]; };
  escape(words.get());
  escape(squares.data());
  escape(&mix);
  return fold(words->data(), squares.data(), mix);
}

}  // namespace chapter29
