#include "io/mapped_file.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/error.hpp"

namespace lmtopo::io {

MappedFile::MappedFile(const std::string& path, const std::string& what) {
  const int fd = ::open(path.c_str(), O_RDONLY);
  if (fd < 0) throw InputError(path + ": cannot open the " + what);
  struct stat st {};
  if (fstat(fd, &st) != 0) {
    ::close(fd);
    throw InputError(path + ": cannot stat the " + what);
  }
  size_ = static_cast<std::size_t>(st.st_size);
  if (size_ > 0) map_ = mmap(nullptr, size_, PROT_READ, MAP_PRIVATE, fd, 0);
  ::close(fd);
  if (map_ == MAP_FAILED) {
    map_ = nullptr;
    throw RuntimeFailure(path + ": mmap failed");
  }
}

MappedFile::~MappedFile() {
  if (map_) munmap(map_, size_);
}

}  // namespace lmtopo::io
