// The /debug/pprof/ index page: Go's table of profiles (count, link,
// description) filled into the embedded template src/ui/assets/index.html,
// plus cpprof's own rows (ServerConfig::index_stats).
// Calls each entry's count(); thread-safe if those are.
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "http/registry.h"

namespace cpprof::http {

// The page for `registry` with `stats` as "key: value" rows. `template_html`
// holds the placeholders <!--cpprof:rows-->, <!--cpprof:extra_links-->,
// <!--cpprof:descriptions--> and <!--cpprof:stats-->.
std::string render_index(std::string_view template_html, const Registry& registry,
                         const std::vector<std::pair<std::string, std::string>>& stats);

// Go's html.EscapeString: escapes < > & ' ".
std::string html_escape(std::string_view text);

}  // namespace cpprof::http
