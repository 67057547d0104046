// Column alignment for Go's plain-text profiles (debug=1).
//
// runtime/pprof writes those forms through text/tabwriter configured as
// NewWriter(w, 1, 8, 1, '\t', 0): tab-terminated cells that sit in the same
// column of consecutive lines are padded, with tabs, to a common width, so
// `#` stack lines line up. Reproducing that keeps our text byte-for-byte in
// Go's shape. Pure function; thread-safe.
#pragma once

#include <string>
#include <string_view>

namespace cpprof::profile {

// `text` with every tab-terminated cell padded as Go's tabwriter does it
// (minwidth 1, tabwidth 8, padding 1, padchar '\t', no flags). A column
// block is a run of consecutive lines that all have a cell in that column;
// the last cell of a line (after its last tab) is never padded. Widths
// count UTF-8 code points, as Go's do.
std::string align_tab_columns(std::string_view text);

}  // namespace cpprof::profile
