#include "symbolize/simplify_name.h"

#include <cstddef>

namespace cpprof::symbolize {
namespace {

constexpr std::string_view kAnonymous = "(anonymous namespace)";

bool ends_with(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

// Index just past the bracket group that opens at `i` ('<' or '('), or npos
// if it never closes.
size_t skip_group(std::string_view s, size_t i) {
  int depth = 0;
  for (size_t j = i; j < s.size(); ++j) {
    char c = s[j];
    if (c == '(' || c == '<' || c == '[' || c == '{') ++depth;
    if (c == ')' || c == '>' || c == ']' || c == '}') {
      if (--depth == 0) return j + 1;
    }
  }
  return std::string_view::npos;
}

// Drops template argument lists and parameter lists, keeping operator
// names ("operator()", "operator<<") and "(anonymous namespace)".
std::string drop_groups(std::string_view s) {
  std::string out;
  for (size_t i = 0; i < s.size();) {
    char c = s[i];
    if (c == '(' && s.substr(i, kAnonymous.size()) == kAnonymous) {
      out += kAnonymous;
      i += kAnonymous.size();
      continue;
    }
    if (ends_with(out, "operator")) {
      // The operator's own symbols: "()", "<", "<<", "<=>", "->", ">>=".
      if (c == '(' && i + 1 < s.size() && s[i + 1] == ')') {
        out += "()";
        i += 2;
        continue;
      }
      size_t start = i;
      while (i < s.size() &&
             std::string_view("<>=-!+*/%^&|~").find(s[i]) != std::string_view::npos) {
        out += s[i++];
      }
      if (i != start) continue;
    }
    if (c == '<' || c == '(') {
      size_t end = skip_group(s, i);
      if (end == std::string_view::npos) return std::string(s);  // unbalanced: leave it
      i = end;
      continue;
    }
    out += c;
    ++i;
  }
  return out;
}

}  // namespace

std::string simplify_function_name(std::string_view demangled) {
  std::string_view name = demangled;
  if (size_t clone = name.find(" [clone "); clone != std::string_view::npos) {
    name = name.substr(0, clone);
  }
  std::string out = drop_groups(name);
  // What follows the last parameter list: " const", " &&", " volatile".
  for (std::string_view qualifier : {" const", " volatile", " &&", " &", " noexcept"}) {
    while (ends_with(out, qualifier)) out.resize(out.size() - qualifier.size());
  }
  // A return type (template functions have one) ends at the last space that
  // is not inside "(anonymous namespace)" and not after "operator".
  int depth = 0;
  size_t cut = std::string::npos;
  for (size_t i = 0; i < out.size(); ++i) {
    char c = out[i];
    if (c == '(' || c == '{' || c == '[') ++depth;
    if (c == ')' || c == '}' || c == ']') --depth;
    if (c == ' ' && depth == 0 && !ends_with(std::string_view(out).substr(0, i), "operator")) {
      cut = i;
    }
  }
  if (cut != std::string::npos) out.erase(0, cut + 1);
  return out.empty() ? std::string(demangled) : out;
}

}  // namespace cpprof::symbolize
