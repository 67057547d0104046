#include "http/index_page.h"

#include <algorithm>
#include <exception>
#include <optional>

namespace cpprof::http {
namespace {

struct Row {
  std::string name;
  std::string href;
  std::string description;
  std::optional<int64_t> count;
};

bool offers_text(const ProfileEntry& entry, int level) {
  return writes_text(entry) &&
         std::find(entry.text_debug_levels.begin(), entry.text_debug_levels.end(), level) !=
             entry.text_debug_levels.end();
}

std::vector<Row> collect_rows(const Registry& registry) {
  std::vector<Row> rows;
  for (const ProfileEntry& entry : registry.entries()) {
    Row row{entry.name, entry.name, entry.description, std::nullopt};
    // Go links "<name>?debug=1"; we offer that only where a text form exists
    // (the link would be a 400 otherwise).
    if (offers_text(entry, 1)) row.href += "?debug=1";
    if (entry.count) {
      try {
        row.count = entry.count();
      } catch (const std::exception&) {
        row.count.reset();  // a failing counter must not take the page down
      }
    }
    rows.push_back(std::move(row));
  }
  rows.push_back(
      {"cmdline", "cmdline", "The command line invocation of the current program", std::nullopt});
  rows.push_back({"symbol", "symbol",
                  "Looks up program counters (Go's symbol protocol, used by pprof)", std::nullopt});
  std::sort(rows.begin(), rows.end(), [](const Row& a, const Row& b) { return a.name < b.name; });
  return rows;
}

void replace(std::string* text, std::string_view placeholder, std::string_view value) {
  size_t at = text->find(placeholder);
  if (at != std::string::npos) text->replace(at, placeholder.size(), value);
}

}  // namespace

std::string html_escape(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    switch (c) {
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '&':
        out += "&amp;";
        break;
      case '\'':
        out += "&#39;";
        break;
      case '"':
        out += "&#34;";
        break;
      default:
        out.push_back(c);
    }
  }
  return out;
}

std::string render_index(std::string_view template_html, const Registry& registry,
                         const std::vector<std::pair<std::string, std::string>>& stats) {
  std::vector<Row> rows = collect_rows(registry);
  std::string table;
  std::string descriptions;
  for (const Row& row : rows) {
    std::string count = row.count ? std::to_string(*row.count) : "";
    table += "<tr><td class=\"count\">" + count + "</td><td><a href='" + html_escape(row.href) +
             "'>" + html_escape(row.name) + "</a></td></tr>\n";
    descriptions += "<li><div class=profile-name>" + html_escape(row.name) + ": </div> " +
                    html_escape(row.description) + "</li>\n";
  }
  std::string extra_links;
  const ProfileEntry* goroutine = registry.find("goroutine");
  if (goroutine != nullptr && offers_text(*goroutine, 2)) {
    extra_links = "<a href=\"goroutine?debug=2\">full goroutine stack dump</a>\n";
  }
  std::string stat_rows;
  for (const auto& [key, value] : stats) {
    stat_rows += "<tr><td>" + html_escape(key) + ":</td><td>" + html_escape(value) + "</td></tr>\n";
  }
  // Never a blank page, even if the asset went missing from the build.
  if (template_html.empty()) {
    template_html =
        "<html><body>/debug/pprof/<table><!--cpprof:rows--></table><!--cpprof:extra_links-->"
        "<ul><!--cpprof:descriptions--></ul><table><!--cpprof:stats--></table></body></html>";
  }
  std::string page(template_html);
  replace(&page, "<!--cpprof:rows-->", table);
  replace(&page, "<!--cpprof:extra_links-->", extra_links);
  replace(&page, "<!--cpprof:descriptions-->", descriptions);
  replace(&page, "<!--cpprof:stats-->", stat_rows);
  return page;
}

}  // namespace cpprof::http
