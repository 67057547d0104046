#include "ui/assets.h"

namespace cpprof::ui {

std::string_view asset(std::string_view name) {
  for (const Asset& a : assets()) {
    if (a.name == name) return a.content;
  }
  return {};
}

}  // namespace cpprof::ui
