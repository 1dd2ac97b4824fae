// SHA-256 (OpenSSL) of files and strings, as lowercase hex.
#pragma once
#include <string>

namespace lmtopo::core {

std::string sha256_hex(const std::string& bytes);
// Streams the file; throws InputError if it cannot be read.
std::string sha256_file(const std::string& path);

}  // namespace lmtopo::core
