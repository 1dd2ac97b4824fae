#include "io/gettext_catalog.hpp"

#include <algorithm>
#include <cstdint>
#include <fstream>
#include <iterator>

#include "core/error.hpp"

namespace lmtopo::io {

Catalog read_mo(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw InputError(path + ": cannot open the gettext catalog");
  const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  auto corrupt = [&](const std::string& what) { return InputError(path + ": corrupt .mo catalog: " + what); };
  if (bytes.size() < 20) throw corrupt("shorter than its header");
  auto raw32 = [&](std::size_t off) {
    if (off + 4 > bytes.size()) throw corrupt("offset beyond the end of the file");
    std::uint32_t v = 0;
    for (int i = 0; i < 4; ++i) v |= static_cast<std::uint32_t>(static_cast<unsigned char>(bytes[off + static_cast<std::size_t>(i)])) << (8 * i);
    return v;
  };
  const std::uint32_t magic = raw32(0);
  bool swap = false;
  if (magic == 0x950412deu) swap = false;
  else if (magic == 0xde120495u) swap = true;
  else throw corrupt("bad magic number");
  auto u32 = [&](std::size_t off) {
    std::uint32_t v = raw32(off);
    if (swap) v = ((v & 0xffu) << 24) | ((v & 0xff00u) << 8) | ((v >> 8) & 0xff00u) | (v >> 24);
    return v;
  };
  const std::uint32_t n = u32(8), orig = u32(12), trans = u32(16);
  if (static_cast<std::uint64_t>(orig) + 8ull * n > bytes.size() || static_cast<std::uint64_t>(trans) + 8ull * n > bytes.size())
    throw corrupt("string tables beyond the end of the file");
  auto string_at = [&](std::size_t table, std::uint32_t i) {
    const std::uint32_t len = u32(table + 8ull * i), off = u32(table + 8ull * i + 4);
    if (static_cast<std::uint64_t>(off) + len > bytes.size()) throw corrupt("string beyond the end of the file");
    return bytes.substr(off, len);
  };
  Catalog cat;
  cat.path = path;
  for (std::uint32_t i = 0; i < n; ++i) {
    CatalogEntry e;
    e.msgid = string_at(orig, i);
    e.msgstr = string_at(trans, i);
    if (e.msgid.empty()) {  // header entry
      std::string header = e.msgstr;
      std::transform(header.begin(), header.end(), header.begin(), ::tolower);
      const auto pos = header.find("charset=");
      if (pos != std::string::npos) {
        const auto end = header.find_first_of(" \n;", pos + 8);
        cat.charset = header.substr(pos + 8, end == std::string::npos ? std::string::npos : end - pos - 8);
      }
      continue;
    }
    const auto ctx = e.msgid.find('\x04');
    if (ctx != std::string::npos) {
      e.has_context = true;
      e.msgid = e.msgid.substr(ctx + 1);
    }
    const auto plural = e.msgid.find('\0');
    if (plural != std::string::npos) {
      e.is_plural = true;
      e.msgid = e.msgid.substr(0, plural);
      e.msgstr = e.msgstr.substr(0, e.msgstr.find('\0'));
    }
    cat.entries.push_back(std::move(e));
  }
  return cat;
}

}  // namespace lmtopo::io
