// GNU gettext binary catalogs (.mo), read directly (format: GNU gettext manual, "The Format of GNU
// MO Files"): both byte orders, context and plural entries reported as such.
#pragma once
#include <string>
#include <vector>

namespace lmtopo::io {

struct CatalogEntry {
  std::string msgid;
  std::string msgstr;
  bool has_context = false;  // msgctxt present (stored as "ctx\x04msgid")
  bool is_plural = false;    // msgid_plural present (stored as "msgid\0plural")
};

struct Catalog {
  std::string path;
  std::string charset;  // from the header entry's Content-Type, lower case; "" if absent
  std::vector<CatalogEntry> entries;  // without the header entry
};

// Throws InputError naming the file for a truncated or corrupt catalog.
Catalog read_mo(const std::string& path);

}  // namespace lmtopo::io
