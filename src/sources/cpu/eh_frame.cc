// Decoding of .eh_frame call-frame information into the flat rows the
// signal handler's walk searches (capture/unwind.h). Runs on cpprof's own
// thread, inside dl_iterate_phdr's callback; every read is bounded by the
// object's loaded segments and each entry's own length, so malformed
// tables yield fewer rows, never a fault or a loop.
#include "sources/cpu/eh_frame.h"

#include <algorithm>
#include <cstring>
#include <unordered_map>

#include "sources/cpu/eh_cursor.h"

namespace cpprof::sources {
namespace {

using capture::CfaRule;
using capture::FpRule;
using capture::UnwindRow;
using eh::Cursor;
using eh::kPeIndirect;

// x86-64 DWARF register numbers.
constexpr uint64_t kRegFp = 6;
constexpr uint64_t kRegSp = 7;
constexpr uint64_t kRegRa = 16;

struct Cie {
  uint64_t code_align = 1;
  int64_t data_align = -8;
  uint64_t ra_register = kRegRa;
  uint8_t fde_encoding = 0;
  bool has_augmentation_data = false;
  bool signal_frame = false;
  uintptr_t instructions = 0;
  uintptr_t end = 0;
};

enum class Rule : uint8_t { kSame, kOffset, kOther, kUndefined };

struct State {
  uint64_t cfa_register = kRegSp;
  int64_t cfa_offset = 8;
  bool cfa_plt = false;    // gcc's PLT expression
  bool cfa_other = false;  // an expression we do not follow
  Rule fp = Rule::kSame;
  int64_t fp_offset = 0;
  Rule ra = Rule::kOffset;
  int64_t ra_offset = -8;
};

// Recognises the CFA expression of PLT stubs:
// DW_OP_breg7 8; DW_OP_breg16 0; DW_OP_lit15; DW_OP_and; DW_OP_litN;
// DW_OP_ge; DW_OP_lit3; DW_OP_shl; DW_OP_plus. Returns N, or -1.
int plt_threshold(uintptr_t expression, uint64_t length) {
  if (length != 11) return -1;
  const auto* op = reinterpret_cast<const uint8_t*>(expression);
  static constexpr uint8_t kHead[] = {0x77, 0x08, 0x80, 0x00, 0x3f, 0x1a};
  static constexpr uint8_t kTail[] = {0x2a, 0x33, 0x24, 0x22};
  if (std::memcmp(op, kHead, sizeof(kHead)) != 0) return -1;
  if (op[6] < 0x30 || op[6] > 0x4f) return -1;
  if (std::memcmp(op + 7, kTail, sizeof(kTail)) != 0) return -1;
  return op[6] - 0x30;
}

UnwindRow row_for(const State& state, uintptr_t pc, uintptr_t base, bool signal_frame) {
  UnwindRow row{};
  row.pc_offset = static_cast<uint32_t>(pc - base);
  row.cfa_rule = CfaRule::kNone;
  row.fp_rule = FpRule::kSame;
  if (signal_frame) {  // a signal trampoline: the interrupted code is in a saved context
    row.cfa_rule = CfaRule::kEnd;
    return row;
  }
  if (state.ra == Rule::kUndefined) {
    row.cfa_rule = CfaRule::kEnd;
    return row;
  }
  if (state.ra != Rule::kOffset || state.ra_offset != -8 || state.cfa_other) return row;
  if (state.cfa_plt) {
    row.cfa_rule = CfaRule::kPlt;
    row.cfa_offset = static_cast<int32_t>(state.cfa_offset);
  } else if (state.cfa_register == kRegSp || state.cfa_register == kRegFp) {
    if (state.cfa_offset < INT32_MIN || state.cfa_offset > INT32_MAX) return row;
    row.cfa_rule = state.cfa_register == kRegSp ? CfaRule::kSp : CfaRule::kFp;
    row.cfa_offset = static_cast<int32_t>(state.cfa_offset);
  } else {
    return row;
  }
  if (state.fp == Rule::kOffset && state.fp_offset >= INT16_MIN && state.fp_offset <= INT16_MAX) {
    row.fp_rule = FpRule::kSaved;
    row.fp_offset = static_cast<int16_t>(state.fp_offset);
  } else if (state.fp != Rule::kSame) {
    row.cfa_rule = CfaRule::kNone;  // the caller's FP is somewhere we cannot follow
  }
  return row;
}

class Decoder {
 public:
  Decoder(uintptr_t base, uintptr_t hdr, const Segments& segments, ObjectRows* out)
      : base_(base), hdr_(hdr), segments_(segments), out_(out) {}

  bool run() {
    Cursor header(segments_, hdr_, UINTPTR_MAX);
    auto version = header.read<uint8_t>();
    auto eh_frame_encoding = header.read<uint8_t>();
    auto count_encoding = header.read<uint8_t>();
    auto table_encoding = header.read<uint8_t>();
    if (!header.ok() || version != 1) return false;
    uintptr_t eh_frame = 0;
    uintptr_t count = 0;
    if (!header.pointer(eh_frame_encoding, hdr_, &eh_frame)) return false;
    if (!header.pointer(count_encoding, hdr_, &count)) return false;
    // The sorted search table: (initial location, FDE address) pairs. Only
    // its FDE addresses are used; every FDE is decoded in full.
    if (table_encoding != 0x3b || count == 0) return false;  // datarel | sdata4
    if (count > (header.end() - header.at()) / 8) return false;
    out_->rows.reserve(count * 4);
    for (uintptr_t i = 0; i < count; ++i) {
      header.read<int32_t>();
      uintptr_t fde = hdr_ + static_cast<intptr_t>(header.read<int32_t>());
      if (!header.ok()) return false;
      decode_fde(fde);
    }
    finish();
    return !out_->rows.empty() && !out_->page_first.empty();
  }

 private:
  const Cie* cie_at(uintptr_t address) {
    auto it = cies_.find(address);
    if (it != cies_.end()) return it->second.instructions != 0 ? &it->second : nullptr;
    Cie& cie = cies_[address];
    Cursor c(segments_, address, UINTPTR_MAX);
    uint64_t length = c.read<uint32_t>();
    if (length == 0xffffffff) length = c.read<uint64_t>();
    uintptr_t end = c.at() + length;
    if (!c.ok() || length > c.end() - c.at()) return nullptr;
    if (c.read<uint32_t>() != 0) return nullptr;  // not a CIE
    auto version = c.read<uint8_t>();
    if (version != 1 && version != 3) return nullptr;
    const char* augmentation = reinterpret_cast<const char*>(c.at());
    size_t augmentation_length = strnlen(augmentation, c.end() - c.at());
    c.skip(augmentation_length + 1);
    if (augmentation_length >= 2 && augmentation[0] == 'e' && augmentation[1] == 'h') {
      c.read<uint64_t>();
    }
    cie.code_align = c.uleb();
    cie.data_align = c.sleb();
    cie.ra_register = version == 1 ? c.read<uint8_t>() : c.uleb();
    if (augmentation_length > 0 && augmentation[0] == 'z') {
      cie.has_augmentation_data = true;
      uint64_t data_length = c.uleb();
      uintptr_t data_start = c.at();
      if (data_length > c.end() - c.at()) return nullptr;
      for (size_t i = 1; i < augmentation_length && c.ok(); ++i) {
        switch (augmentation[i]) {
          case 'R':
            cie.fde_encoding = c.read<uint8_t>();
            break;
          case 'L':
            c.read<uint8_t>();
            break;
          case 'S':
            cie.signal_frame = true;
            break;
          case 'P': {
            auto encoding = c.read<uint8_t>();
            uintptr_t ignored = 0;
            c.pointer(static_cast<uint8_t>(encoding & ~kPeIndirect), 0, &ignored);
            break;
          }
          case 'B':
            break;
          default:
            return nullptr;  // unknown: its data, and any 'S' after it, cannot be read
        }
      }
      c.seek(data_start + data_length);
    }
    // Larger factors are malformed, and would overflow the offsets.
    constexpr int64_t kMaxFactor = 1 << 16;
    if (cie.code_align == 0 || cie.code_align > kMaxFactor || cie.data_align < -kMaxFactor ||
        cie.data_align > kMaxFactor) {
      return nullptr;
    }
    if (!c.ok() || cie.ra_register != kRegRa) return nullptr;
    cie.instructions = c.at();
    cie.end = end;
    return &cie;
  }

  void decode_fde(uintptr_t fde) {
    Cursor c(segments_, fde, UINTPTR_MAX);
    uint64_t length = c.read<uint32_t>();
    if (length == 0xffffffff) return;  // 64-bit DWARF: not produced for x86-64 .eh_frame
    if (!c.ok() || length > c.end() - c.at()) return;
    uintptr_t end = c.at() + length;
    uintptr_t id_field = c.at();
    auto cie_offset = c.read<uint32_t>();
    if (!c.ok() || cie_offset == 0 || cie_offset > id_field) return;
    const Cie* cie = cie_at(id_field - cie_offset);
    if (cie == nullptr) return;
    uintptr_t pc_begin = 0;
    uintptr_t pc_range = 0;
    if (!c.pointer(cie->fde_encoding, 0, &pc_begin)) return;
    if (!c.pointer(cie->fde_encoding & 0x0f, 0, &pc_range)) return;
    if (cie->has_augmentation_data) c.skip(c.uleb());
    if (!c.ok() || pc_range == 0 || pc_range > UINT32_MAX || pc_begin < base_ ||
        pc_begin > UINTPTR_MAX - pc_range || pc_begin + pc_range - base_ > UINT32_MAX) {
      return;
    }
    const uintptr_t pc_end = pc_begin + pc_range;
    // The search table is sorted by start: an FDE starting inside the
    // previous one is a duplicate or malformed; the first one wins.
    if (pc_begin < last_end_) return;
    std::vector<UnwindRow>& rows = out_->rows;
    if (!rows.empty() && rows.back().cfa_rule == CfaRule::kNone &&
        rows.back().pc_offset == pc_begin - base_) {
      rows.pop_back();  // the previous function's end marker: this one starts right there
    }
    ++out_->fdes;
    const size_t first_row = rows.size();
    State initial;
    uintptr_t loc = pc_begin;
    bool ok = execute(*cie, cie->instructions, cie->end, &initial, initial, nullptr, &loc, pc_end);
    State state = initial;
    ok = ok && execute(*cie, c.at(), end, &state, initial, &rows, &loc, pc_end);
    if (!ok) {
      // Half-run instructions would describe the function wrongly: no rows
      // for it at all (the walk falls back to its frame record).
      rows.resize(first_row);
      UnwindRow none{};
      none.pc_offset = static_cast<uint32_t>(pc_begin - base_);
      rows.push_back(none);
    } else if (loc < pc_end) {
      rows.push_back(row_for(state, loc, base_, cie->signal_frame));
    }
    UnwindRow gap{};
    gap.pc_offset = static_cast<uint32_t>(pc_end - base_);
    rows.push_back(gap);
    last_end_ = pc_end;
    out_->start = out_->start == 0 ? pc_begin : std::min(out_->start, pc_begin);
    out_->limit = std::max(out_->limit, pc_end);
  }

  // Runs call-frame instructions, appending a row each time the location
  // advances (rows == nullptr: a CIE's initial instructions, no rows).
  // Rows lie inside [*loc, pc_end); false on anything malformed.
  bool execute(const Cie& cie, uintptr_t from, uintptr_t to, State* state, const State& initial,
               std::vector<UnwindRow>* rows, uintptr_t* loc, uintptr_t pc_end) {
    Cursor c(segments_, from, to);
    std::vector<State> remembered;
    bool in_range = true;
    auto advance = [&](uint64_t delta) {
      if (rows != nullptr && *loc < pc_end) {
        rows->push_back(row_for(*state, *loc, base_, cie.signal_frame));
      }
      // delta < 2^32 and code_align <= 2^16: no overflow; past the end, stop.
      if (delta * cie.code_align > pc_end - *loc) {
        in_range = false;
        *loc = pc_end;
      } else {
        *loc += delta * cie.code_align;
      }
    };
    // A factored offset; operands beyond 2^31 are malformed.
    bool bad_operand = false;
    auto factored = [&](int64_t value, int64_t factor) -> int64_t {
      if (value < -(int64_t{1} << 31) || value > (int64_t{1} << 31)) {
        bad_operand = true;
        return 0;
      }
      return value * factor;
    };
    auto ufactored = [&](uint64_t value, int64_t factor) -> int64_t {
      if (value > (uint64_t{1} << 31)) {
        bad_operand = true;
        return 0;
      }
      return static_cast<int64_t>(value) * factor;
    };
    auto set_rule = [&](uint64_t reg, Rule rule, int64_t offset) {
      if (reg == kRegFp) {
        state->fp = rule;
        state->fp_offset = offset;
      } else if (reg == kRegRa) {
        state->ra = rule;
        state->ra_offset = offset;
      }
    };
    auto restore_rule = [&](uint64_t reg) {
      if (reg == kRegFp) {
        state->fp = initial.fp;
        state->fp_offset = initial.fp_offset;
      } else if (reg == kRegRa) {
        state->ra = initial.ra;
        state->ra_offset = initial.ra_offset;
      }
    };
    while (c.ok() && c.at() < to) {
      auto op = c.read<uint8_t>();
      uint8_t low = op & 0x3f;
      switch (op >> 6) {
        case 1:
          advance(low);
          continue;
        case 2:
          set_rule(low, Rule::kOffset, ufactored(c.uleb(), cie.data_align));
          continue;
        case 3:
          restore_rule(low);
          continue;
        default:
          break;
      }
      switch (op) {
        case 0x00:
          break;      // nop
        case 0x01: {  // set_loc
          uintptr_t target = 0;
          if (!c.pointer(cie.fde_encoding, 0, &target) || target < *loc || target > pc_end) {
            return false;
          }
          advance(0);
          *loc = target;
          break;
        }
        case 0x02:
          advance(c.read<uint8_t>());
          break;
        case 0x03:
          advance(c.read<uint16_t>());
          break;
        case 0x04:
          advance(c.read<uint32_t>());
          break;
        case 0x05: {  // offset_extended
          uint64_t reg = c.uleb();
          set_rule(reg, Rule::kOffset, ufactored(c.uleb(), cie.data_align));
          break;
        }
        case 0x06:
          restore_rule(c.uleb());
          break;
        case 0x07:
          set_rule(c.uleb(), Rule::kUndefined, 0);
          break;
        case 0x08:
          set_rule(c.uleb(), Rule::kSame, 0);
          break;
        case 0x09: {  // register
          uint64_t reg = c.uleb();
          c.uleb();
          set_rule(reg, Rule::kOther, 0);
          break;
        }
        case 0x0a:
          remembered.push_back(*state);
          break;
        case 0x0b:
          if (remembered.empty()) return false;
          *state = remembered.back();
          remembered.pop_back();
          break;
        case 0x0c:  // def_cfa
          state->cfa_register = c.uleb();
          state->cfa_offset = ufactored(c.uleb(), 1);
          state->cfa_plt = state->cfa_other = false;
          break;
        case 0x0d:  // def_cfa_register: a register rule again
          state->cfa_register = c.uleb();
          state->cfa_plt = state->cfa_other = false;
          break;
        case 0x0e:
          state->cfa_offset = ufactored(c.uleb(), 1);
          break;
        case 0x0f: {  // def_cfa_expression
          uint64_t length = c.uleb();
          int threshold = length <= c.end() - c.at() ? plt_threshold(c.at(), length) : -1;
          state->cfa_plt = threshold >= 0;
          state->cfa_other = threshold < 0;
          state->cfa_offset = threshold;
          c.skip(length);
          break;
        }
        case 0x10:    // expression
        case 0x16: {  // val_expression
          uint64_t reg = c.uleb();
          c.skip(c.uleb());
          set_rule(reg, Rule::kOther, 0);
          break;
        }
        case 0x11: {  // offset_extended_sf
          uint64_t reg = c.uleb();
          set_rule(reg, Rule::kOffset, factored(c.sleb(), cie.data_align));
          break;
        }
        case 0x12:  // def_cfa_sf
          state->cfa_register = c.uleb();
          state->cfa_offset = factored(c.sleb(), cie.data_align);
          state->cfa_plt = state->cfa_other = false;
          break;
        case 0x13:
          state->cfa_offset = factored(c.sleb(), cie.data_align);
          break;
        case 0x14:  // val_offset
        case 0x15: {
          uint64_t reg = c.uleb();
          if (op == 0x14) {
            c.uleb();
          } else {
            c.sleb();
          }
          set_rule(reg, Rule::kOther, 0);
          break;
        }
        case 0x2e:
          c.uleb();
          break;      // GNU_args_size
        case 0x2f: {  // GNU_negative_offset_extended
          uint64_t reg = c.uleb();
          set_rule(reg, Rule::kOffset, -ufactored(c.uleb(), cie.data_align));
          break;
        }
        default:
          return false;  // an opcode we do not know: its operands cannot be skipped
      }
      if (bad_operand || !in_range) return false;
    }
    return c.ok();
  }

  // Orders the rows (the search table already did, unless malformed),
  // keeps the last of rows at one address (an advance by 0), merges
  // repeats and builds the page index.
  void finish() {
    auto& rows = out_->rows;
    auto by_pc = [](const UnwindRow& a, const UnwindRow& b) { return a.pc_offset < b.pc_offset; };
    if (!std::is_sorted(rows.begin(), rows.end(), by_pc)) {
      std::stable_sort(rows.begin(), rows.end(), by_pc);
    }
    std::vector<UnwindRow> merged;
    merged.reserve(rows.size());
    for (const UnwindRow& row : rows) {
      if (!merged.empty() && merged.back().pc_offset == row.pc_offset) merged.pop_back();
      if (!merged.empty() && std::memcmp(&merged.back().cfa_rule, &row.cfa_rule,
                                         sizeof(UnwindRow) - sizeof(uint32_t)) == 0) {
        continue;
      }
      merged.push_back(row);
    }
    rows = std::move(merged);
    rows.shrink_to_fit();
    if (rows.empty() || out_->limit <= out_->start) return;
    uintptr_t pages = ((out_->limit - out_->start) >> capture::kUnwindPageShift) + 1;
    out_->page_first.resize(pages + 1);
    size_t r = 0;
    for (uintptr_t p = 0; p <= pages; ++p) {
      uintptr_t page_start = out_->start + (p << capture::kUnwindPageShift) - base_;
      while (r + 1 < rows.size() && rows[r + 1].pc_offset <= page_start) ++r;
      out_->page_first[p] = static_cast<uint32_t>(r);
    }
  }

  uintptr_t base_;
  uintptr_t hdr_;
  const Segments& segments_;
  ObjectRows* out_;
  std::unordered_map<uintptr_t, Cie> cies_;
  uintptr_t last_end_ = 0;  // end of the last FDE decoded
};

}  // namespace

bool decode_eh_frame(uintptr_t base, uintptr_t eh_frame_hdr, const Segments& segments,
                     ObjectRows* out) {
#if defined(__x86_64__)
  return Decoder(base, eh_frame_hdr, segments, out).run();
#else
  // The rows assume x86-64 (registers, the return address below the CFA):
  // elsewhere the walk is the frame-pointer walk.
  (void)base, (void)eh_frame_hdr, (void)segments, (void)out;
  return false;
#endif
}

}  // namespace cpprof::sources
