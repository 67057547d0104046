#include "profile/text_columns.h"

#include <algorithm>
#include <cstddef>
#include <vector>

namespace cpprof::profile {
namespace {

constexpr size_t kMinWidth = 1;
constexpr size_t kTabWidth = 8;
constexpr size_t kPadding = 1;

struct Cell {
  std::string_view text;
  size_t width = 0;  // in code points
};

using Line = std::vector<Cell>;

size_t code_points(std::string_view text) {
  size_t n = 0;
  for (char c : text) n += (static_cast<unsigned char>(c) & 0xC0) != 0x80;
  return n;
}

std::vector<Line> split_cells(std::string_view text) {
  std::vector<Line> lines(1);
  size_t start = 0;
  for (size_t i = 0; i <= text.size(); ++i) {
    if (i < text.size() && text[i] != '\t' && text[i] != '\n') continue;
    std::string_view cell = text.substr(start, i - start);
    lines.back().push_back({cell, code_points(cell)});
    if (i < text.size() && text[i] == '\n') lines.emplace_back();
    start = i + 1;
  }
  return lines;
}

class Aligner {
 public:
  explicit Aligner(const std::vector<Line>& lines) : lines_(lines) {}

  // Go's Writer.format: finds each block of lines that has a cell in the
  // next column, fixes that column's width, and recurses to the right.
  void format(size_t line0, size_t line1) {
    const size_t column = widths_.size();
    for (size_t i = line0; i < line1; ++i) {
      if (!has_cell(i, column)) continue;
      write_lines(line0, i);
      line0 = i;
      size_t width = kMinWidth;
      for (; i < line1 && has_cell(i, column); ++i) {
        width = std::max(width, lines_[i][column].width + kPadding);
      }
      widths_.push_back(width);
      format(line0, i);
      widths_.pop_back();
      line0 = i;
    }
    write_lines(line0, line1);
  }

  std::string take() { return std::move(out_); }

 private:
  // The last cell of a line is not tab-terminated and takes no part in columns.
  bool has_cell(size_t line, size_t column) const { return column + 1 < lines_[line].size(); }

  void write_lines(size_t line0, size_t line1) {
    for (size_t i = line0; i < line1; ++i) {
      const Line& line = lines_[i];
      for (size_t j = 0; j < line.size(); ++j) {
        out_.append(line[j].text);
        if (j < widths_.size()) pad(line[j].width, widths_[j]);
      }
      if (i + 1 < lines_.size()) out_ += '\n';
    }
  }

  // Tabs up to the cell width rounded up to a whole tab stop.
  void pad(size_t text_width, size_t cell_width) {
    cell_width = (cell_width + kTabWidth - 1) / kTabWidth * kTabWidth;
    const size_t tabs = (cell_width - text_width + kTabWidth - 1) / kTabWidth;
    out_.append(tabs, '\t');
  }

  const std::vector<Line>& lines_;
  std::vector<size_t> widths_;
  std::string out_;
};

}  // namespace

std::string align_tab_columns(std::string_view text) {
  const std::vector<Line> lines = split_cells(text);
  Aligner aligner(lines);
  aligner.format(0, lines.size());
  return aligner.take();
}

}  // namespace cpprof::profile
