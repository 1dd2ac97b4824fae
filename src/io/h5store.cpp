#include "io/h5store.hpp"

#include <hdf5.h>

#include <algorithm>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <type_traits>

#include <sys/statvfs.h>

#include "core/error.hpp"
#include "core/hashing.hpp"
#include "core/provenance.hpp"
#include "mpi/collective.hpp"

namespace lmtopo::io {
namespace {

// Every HDF5 call is checked; the message names the file and the call.
hid_t checked(hid_t id, const char* call, const std::string& file) {
  if (id < 0) throw RuntimeFailure(file + ": HDF5 " + call + " failed");
  return id;
}
// Bytes free to this user on the file system holding `path` (its folder), or -1 if unknown.
long long free_bytes(const std::string& path) {
  struct statvfs fs {};
  const auto dir = std::filesystem::path(path).parent_path();
  if (statvfs(dir.empty() ? "." : dir.c_str(), &fs) != 0) return -1;
  return static_cast<long long>(fs.f_bavail) * static_cast<long long>(fs.f_frsize);
}

// Why a write may have failed, when the file system says so (HDF5's own message is only "failed").
// `file` is a path, or "path:/dataset" as the messages name a dataset.
std::string space_hint(const std::string& file) {
  const auto dataset = file.find(".h5:");
  const long long free = free_bytes(dataset == std::string::npos ? file : file.substr(0, dataset + 3));
  return free >= 0 && free < (1LL << 20) ? " (the file system holding it is full: " + std::to_string(free) + " bytes free)" : "";
}

bool g_hdf5_file_left_open = false;

void checked_status(herr_t status, const char* call, const std::string& file) {
  if (status < 0) throw RuntimeFailure(file + ": HDF5 " + call + " failed" + space_hint(file));
}

class Handle {
 public:
  Handle() = default;
  Handle(hid_t id, herr_t (*close)(hid_t)) : id_(id), close_(close) {}
  Handle(Handle&& o) noexcept : id_(o.id_), close_(o.close_) { o.id_ = -1; }
  Handle& operator=(Handle&& o) noexcept {
    reset();
    id_ = o.id_;
    close_ = o.close_;
    o.id_ = -1;
    return *this;
  }
  ~Handle() { reset(); }
  void reset() {
    if (id_ >= 0 && close_) close_(id_);
    id_ = -1;
  }
  hid_t get() const { return id_; }
  // Gives up ownership without closing.
  hid_t release() {
    const hid_t id = id_;
    id_ = -1;
    return id;
  }

 private:
  hid_t id_ = -1;
  herr_t (*close_)(hid_t) = nullptr;
};

hid_t storage_type(DType t) {
  switch (t) {
    case DType::f32: return H5T_IEEE_F32LE;
    case DType::f64: return H5T_IEEE_F64LE;
    case DType::i64: return H5T_STD_I64LE;
    case DType::bf16: return H5T_STD_U16LE;
  }
  return H5T_IEEE_F32LE;
}
hid_t memory_type(DType t) {
  switch (t) {
    case DType::f32: return H5T_NATIVE_FLOAT;
    case DType::f64: return H5T_NATIVE_DOUBLE;
    case DType::i64: return H5T_NATIVE_INT64;
    case DType::bf16: return H5T_NATIVE_UINT16;
  }
  return H5T_NATIVE_FLOAT;
}
std::size_t type_bytes(DType t) { return t == DType::f32 ? 4 : t == DType::bf16 ? 2 : 8; }

Handle string_type(std::size_t width, const std::string& file) {
  Handle t(checked(H5Tcopy(H5T_C_S1), "H5Tcopy", file), H5Tclose);
  checked_status(H5Tset_size(t.get(), std::max<std::size_t>(width, 1)), "H5Tset_size", file);
  checked_status(H5Tset_cset(t.get(), H5T_CSET_UTF8), "H5Tset_cset", file);
  checked_status(H5Tset_strpad(t.get(), H5T_STR_NULLPAD), "H5Tset_strpad", file);
  return t;
}

// Deduces the link-info type of this HDF5 version's H5Lvisit callback (it changed in 1.12).
template <class T> struct third_argument;
template <class R, class A, class B, class C, class D> struct third_argument<R (*)(A, B, C, D)> { using type = C; };
using LinkInfoPtr = third_argument<H5L_iterate_t>::type;

herr_t collect_link(hid_t, const char* name, LinkInfoPtr, void* data) {
  static_cast<std::vector<std::string>*>(data)->push_back(std::string("/") + name);
  return 0;
}

std::string read_attribute_text(hid_t obj, const std::string& name, const std::string& file) {
  Handle attr(checked(H5Aopen(obj, name.c_str(), H5P_DEFAULT), "H5Aopen", file), H5Aclose);
  Handle type(checked(H5Aget_type(attr.get()), "H5Aget_type", file), H5Tclose);
  Handle space(checked(H5Aget_space(attr.get()), "H5Aget_space", file), H5Sclose);
  const hssize_t n = H5Sget_simple_extent_npoints(space.get());
  const H5T_class_t cls = H5Tget_class(type.get());
  if (cls == H5T_STRING) {
    if (H5Tis_variable_str(type.get()) > 0) {
      std::vector<char*> ptrs(static_cast<std::size_t>(n), nullptr);
      Handle mt(checked(H5Tcopy(H5T_C_S1), "H5Tcopy", file), H5Tclose);
      H5Tset_size(mt.get(), H5T_VARIABLE);
      H5Tset_cset(mt.get(), H5Tget_cset(type.get()));  // h5py writes UTF-8; a mismatch fails the read
      checked_status(H5Aread(attr.get(), mt.get(), ptrs.data()), "H5Aread", file);
      std::string out;
      for (std::size_t i = 0; i < ptrs.size(); ++i) out += (i ? "\n" : "") + std::string(ptrs[i] ? ptrs[i] : "");
      H5Dvlen_reclaim(mt.get(), space.get(), H5P_DEFAULT, ptrs.data());
      return out;
    }
    const std::size_t width = H5Tget_size(type.get());
    std::vector<char> buf(width * static_cast<std::size_t>(n) + 1, '\0');
    checked_status(H5Aread(attr.get(), type.get(), buf.data()), "H5Aread", file);
    std::string out;
    for (hssize_t i = 0; i < n; ++i) {
      const char* s = buf.data() + static_cast<std::size_t>(i) * width;
      out += (i ? "\n" : "") + std::string(s, strnlen(s, width));
    }
    return out;
  }
  if (cls == H5T_INTEGER) {
    std::vector<long long> v(static_cast<std::size_t>(n));
    checked_status(H5Aread(attr.get(), H5T_NATIVE_LLONG, v.data()), "H5Aread", file);
    std::string out;
    for (std::size_t i = 0; i < v.size(); ++i) out += (i ? "," : "") + std::to_string(v[i]);
    return out;
  }
  if (cls == H5T_FLOAT) {
    std::vector<double> v(static_cast<std::size_t>(n));
    checked_status(H5Aread(attr.get(), H5T_NATIVE_DOUBLE, v.data()), "H5Aread", file);
    std::string out;
    for (std::size_t i = 0; i < v.size(); ++i) out += (i ? "," : "") + std::to_string(v[i]);
    return out;
  }
  return "<unsupported attribute type>";
}

herr_t collect_attribute_name(hid_t, const char* name, const H5A_info_t*, void* data) {
  static_cast<std::vector<std::string>*>(data)->push_back(name);
  return 0;
}

std::map<std::string, std::string> attributes_of(hid_t obj, const std::string& file) {
  std::vector<std::string> names;
  hsize_t idx = 0;
  H5Aiterate2(obj, H5_INDEX_NAME, H5_ITER_INC, &idx, collect_attribute_name, &names);
  std::map<std::string, std::string> out;
  for (const auto& n : names) out[n] = read_attribute_text(obj, n, file);
  return out;
}

void write_string_attribute(hid_t obj, const std::string& name, const std::vector<std::string>& values,
                            bool scalar, const std::string& file) {
  std::size_t width = 1;
  for (const auto& v : values) width = std::max(width, v.size());
  Handle type = string_type(width, file);
  const hsize_t n = values.size();
  Handle space(checked(scalar ? H5Screate(H5S_SCALAR) : H5Screate_simple(1, &n, nullptr), "H5Screate", file),
               H5Sclose);
  if (H5Aexists(obj, name.c_str()) > 0) checked_status(H5Adelete(obj, name.c_str()), "H5Adelete", file);
  Handle attr(checked(H5Acreate2(obj, name.c_str(), type.get(), space.get(), H5P_DEFAULT, H5P_DEFAULT), "H5Acreate2",
                      file),
              H5Aclose);
  std::vector<char> buf(width * std::max<std::size_t>(values.size(), 1), '\0');
  for (std::size_t i = 0; i < values.size(); ++i) std::memcpy(buf.data() + i * width, values[i].data(), values[i].size());
  checked_status(H5Awrite(attr.get(), type.get(), buf.data()), "H5Awrite", file);
}

// A scalar numeric attribute stored as `file_type`, written from `value` of `memory_type`.
void write_scalar_attribute(hid_t obj, const std::string& name, hid_t file_type, hid_t memory_type, const void* value,
                            const std::string& file) {
  Handle space(checked(H5Screate(H5S_SCALAR), "H5Screate", file), H5Sclose);
  if (H5Aexists(obj, name.c_str()) > 0) checked_status(H5Adelete(obj, name.c_str()), "H5Adelete", file);
  Handle attr(checked(H5Acreate2(obj, name.c_str(), file_type, space.get(), H5P_DEFAULT, H5P_DEFAULT), "H5Acreate2", file),
              H5Aclose);
  checked_status(H5Awrite(attr.get(), memory_type, value), "H5Awrite", file);
}

}  // namespace

std::string dtype_name(DType t) {
  switch (t) {
    case DType::f32: return "float32";
    case DType::f64: return "float64";
    case DType::i64: return "int64";
    case DType::bf16: return "bfloat16";
  }
  return "unknown";
}

void configure_hdf5_environment() {
  setenv("HDF5_USE_FILE_LOCKING", "FALSE", /*overwrite=*/0);
  static bool quiet = [] {
    H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);  // errors become one-line exceptions instead
    return true;
  }();
  (void)quiet;
}

struct H5Output::State {
  std::uint64_t planned_bytes = 0;  // uncompressed datasets created so far
  Handle file;
  Handle dxpl;
  std::map<std::string, Handle> datasets;
  std::map<std::string, DType> numeric_types;
  std::map<std::string, std::vector<hsize_t>> shapes;
  std::map<std::string, std::size_t> string_widths;
};

H5Output::H5Output(std::string path, MPI_Comm comm, const std::string& schema, const nlohmann::json& config)
    : path_(std::move(path)), partial_(path_ + ".partial"), comm_(comm), state_(std::make_unique<State>()) {
  configure_hdf5_environment();
  mpi::ensure_initialized();
  Handle fapl(checked(H5Pcreate(H5P_FILE_ACCESS), "H5Pcreate", path_), H5Pclose);
  checked_status(H5Pset_fapl_mpio(fapl.get(), comm_, MPI_INFO_NULL), "H5Pset_fapl_mpio", path_);
  checked_status(H5Pset_all_coll_metadata_ops(fapl.get(), true), "H5Pset_all_coll_metadata_ops", path_);
  checked_status(H5Pset_coll_metadata_write(fapl.get(), true), "H5Pset_coll_metadata_write", path_);
  hid_t file = -1;
  mpi::on_all(comm_, [&] {
    file = H5Fcreate(partial_.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, fapl.get());
    if (file < 0) throw RuntimeFailure(partial_ + ": cannot create the HDF5 file (is the directory writable?)");
  });
  state_->file = Handle(file, H5Fclose);
  state_->dxpl = Handle(checked(H5Pcreate(H5P_DATASET_XFER), "H5Pcreate", path_), H5Pclose);
  checked_status(H5Pset_dxpl_mpio(state_->dxpl.get(), H5FD_MPIO_COLLECTIVE), "H5Pset_dxpl_mpio", path_);

  set_attribute("/", "lmtopo_schema", schema);
  set_attribute("/", "lmtopo_version", core::lmtopo_version());
  set_attribute("/", "git_sha", core::git_sha());
  set_attribute("/", "git_dirty", static_cast<long long>(core::git_dirty() ? 1 : 0));
  set_attribute("/", "config_json", config.dump());
  // created_by is identical on every rank: rank 0's record, with every rank's thread count, is broadcast.
  std::vector<int> threads(static_cast<std::size_t>(mpi::size(comm_)));
  const int mine = core::compute_threads();
  MPI_Allgather(&mine, 1, MPI_INT, threads.data(), 1, MPI_INT, comm_);
  nlohmann::json record = core::created_by(mpi::size(comm_));
  record["threads_per_rank"] = threads;
  const std::string created = mpi::broadcast_string(comm_, record.dump());
  set_attribute("/", "created_by", created);
}

H5Output::~H5Output() {
  if (committed_) return;
  state_->datasets.clear();
  state_->dxpl.reset();
  const hid_t file = state_->file.release();
  if (file >= 0 && H5Fclose(file) < 0) g_hdf5_file_left_open = true;  // e.g. its flush found the disk full
  if (mpi::rank(comm_) == 0) std::remove(partial_.c_str());
}

bool hdf5_file_left_open() { return g_hdf5_file_left_open; }

void H5Output::create_numeric(const std::string& name, DType type, const std::vector<std::uint64_t>& shape,
                              bool deflate, std::uint64_t chunk_rows) {
  if (shape.empty()) throw std::invalid_argument("create_numeric: empty shape");
  std::vector<hsize_t> dims(shape.begin(), shape.end());
  if (!deflate) {
    std::uint64_t bytes = type_bytes(type);
    for (auto d : dims) bytes *= d;
    state_->planned_bytes += bytes;
    require_space(state_->planned_bytes);
  }
  Handle lcpl(checked(H5Pcreate(H5P_LINK_CREATE), "H5Pcreate", path_), H5Pclose);
  H5Pset_create_intermediate_group(lcpl.get(), 1);
  Handle dcpl(checked(H5Pcreate(H5P_DATASET_CREATE), "H5Pcreate", path_), H5Pclose);
  const bool empty = std::any_of(dims.begin(), dims.end(), [](hsize_t d) { return d == 0; });
  if (!empty) {
    // About 1 MiB chunks: halve the leading axes first, so that a chunk holds whole rows of the
    // trailing (hidden) axis, the unit every reader takes.
    std::vector<hsize_t> chunk = dims;
    if (chunk_rows > 0) chunk[0] = std::min<hsize_t>(dims[0], chunk_rows);
    auto bytes = [&] {
      std::uint64_t b = type_bytes(type);
      for (auto c : chunk) b *= c;
      return b;
    };
    for (std::size_t axis = 0; axis < chunk.size() && chunk_rows == 0; ++axis)
      while (bytes() > (1u << 20) && chunk[axis] > 1) chunk[axis] = (chunk[axis] + 1) / 2;
    checked_status(H5Pset_chunk(dcpl.get(), static_cast<int>(chunk.size()), chunk.data()), "H5Pset_chunk", path_);
    if (deflate) checked_status(H5Pset_deflate(dcpl.get(), 4), "H5Pset_deflate", path_);
    checked_status(H5Pset_fill_time(dcpl.get(), H5D_FILL_TIME_NEVER), "H5Pset_fill_time", path_);
  }
  Handle space(checked(H5Screate_simple(static_cast<int>(dims.size()), dims.data(), nullptr), "H5Screate_simple", path_),
               H5Sclose);
  Handle ds(checked(H5Dcreate2(state_->file.get(), name.c_str(), storage_type(type), space.get(), lcpl.get(), dcpl.get(),
                               H5P_DEFAULT),
                    "H5Dcreate2", path_ + ":" + name),
            H5Dclose);
  if (type == DType::bf16) write_string_attribute(ds.get(), "lmtopo_dtype", {"bfloat16"}, true, path_);
  state_->datasets[name] = std::move(ds);
  state_->numeric_types[name] = type;
  state_->shapes[name] = dims;
}

namespace {
// Selects [offset, offset+count) along `axis` of `file_space` and returns the matching memory space.
Handle select_slab(hid_t file_space, const std::vector<hsize_t>& dims, std::size_t axis, std::uint64_t offset,
                   std::uint64_t count_along, const std::string& file) {
  if (count_along == 0) {
    checked_status(H5Sselect_none(file_space), "H5Sselect_none", file);
    const hsize_t one = 1;
    Handle mem(checked(H5Screate_simple(1, &one, nullptr), "H5Screate_simple", file), H5Sclose);
    checked_status(H5Sselect_none(mem.get()), "H5Sselect_none", file);
    return mem;
  }
  if (axis >= dims.size() || offset + count_along > dims[axis]) throw std::out_of_range(file + ": slab beyond the dataset");
  std::vector<hsize_t> start(dims.size(), 0), count = dims;
  start[axis] = offset;
  count[axis] = count_along;
  checked_status(H5Sselect_hyperslab(file_space, H5S_SELECT_SET, start.data(), nullptr, count.data(), nullptr),
                 "H5Sselect_hyperslab", file);
  return Handle(checked(H5Screate_simple(static_cast<int>(count.size()), count.data(), nullptr), "H5Screate_simple", file),
                H5Sclose);
}
}  // namespace

namespace {
// Test hook for the "killed rank" tests: LMTOPO_TEST_KILL_RANK_IN_WRITE=<rank>[:<text>] kills that rank
// at its first collective write (into a file whose path contains <text>), as a node failure would.
void maybe_killed_in_write(MPI_Comm comm, const std::string& path) {
  static const char* target = std::getenv("LMTOPO_TEST_KILL_RANK_IN_WRITE");
  if (!target) return;
  const std::string t = target;
  const auto colon = t.find(':');
  const std::string rank = t.substr(0, colon), text = colon == std::string::npos ? "" : t.substr(colon + 1);
  if (std::to_string(mpi::rank(comm)) == rank && path.find(text) != std::string::npos) std::raise(SIGKILL);
}
}  // namespace

void H5Output::write_slab(const std::string& name, std::size_t axis, std::uint64_t offset, std::uint64_t count,
                          const void* data) {
  maybe_killed_in_write(comm_, path_);
  auto it = state_->datasets.find(name);
  if (it == state_->datasets.end() || !state_->numeric_types.count(name))
    throw std::logic_error("write_slab: unknown numeric dataset " + name);
  const auto& dims = state_->shapes[name];
  if (std::any_of(dims.begin(), dims.end(), [](hsize_t d) { return d == 0; })) return;
  Handle fspace(checked(H5Dget_space(it->second.get()), "H5Dget_space", path_), H5Sclose);
  Handle mspace = select_slab(fspace.get(), dims, axis, offset, count, path_);
  static const char dummy = 0;
  checked_status(H5Dwrite(it->second.get(), memory_type(state_->numeric_types[name]), mspace.get(), fspace.get(),
                          state_->dxpl.get(), count ? data : &dummy),
                 "H5Dwrite", path_ + ":" + name);
}

void H5Output::require_space(std::uint64_t planned_bytes) {
  // Before the data is written: a write that fails half-way on a full file system leaves HDF5 1.10
  // unable to close the file (hdf5_file_left_open in h5store.hpp), and says only "H5Dwrite failed".
  mpi::on_root(comm_, [&] {
    std::error_code ec;
    const auto written = std::filesystem::file_size(partial_, ec);
    const std::uint64_t need = planned_bytes + (64u << 10) - (ec ? 0 : std::min<std::uint64_t>(written, planned_bytes));
    const long long free = free_bytes(partial_);
    if (free >= 0 && static_cast<std::uint64_t>(free) < need)
      throw RuntimeFailure(path_ + ": not enough space: the datasets need about " + std::to_string(need) + " bytes more, the file system has " +
                           std::to_string(free) + " free");
  });
}

void H5Output::create_strings(const std::string& name, std::uint64_t rows, std::size_t local_max_bytes, bool deflate) {
  unsigned long long local = local_max_bytes, width = local_max_bytes;
  if (mpi::initialized())
    mpi::check(MPI_Allreduce(&local, &width, 1, MPI_UNSIGNED_LONG_LONG, MPI_MAX, comm_), "MPI_Allreduce");
  width = std::max<unsigned long long>(width, 1);
  if (!deflate) {
    state_->planned_bytes += rows * width;
    require_space(state_->planned_bytes);
  }
  Handle type = string_type(width, path_);
  Handle lcpl(checked(H5Pcreate(H5P_LINK_CREATE), "H5Pcreate", path_), H5Pclose);
  H5Pset_create_intermediate_group(lcpl.get(), 1);
  Handle dcpl(checked(H5Pcreate(H5P_DATASET_CREATE), "H5Pcreate", path_), H5Pclose);
  const hsize_t n = rows;
  if (n > 0) {
    const hsize_t chunk = std::min<hsize_t>(n, std::max<hsize_t>(1, (1u << 20) / width));
    checked_status(H5Pset_chunk(dcpl.get(), 1, &chunk), "H5Pset_chunk", path_);
    if (deflate) checked_status(H5Pset_deflate(dcpl.get(), 4), "H5Pset_deflate", path_);
    checked_status(H5Pset_fill_time(dcpl.get(), H5D_FILL_TIME_NEVER), "H5Pset_fill_time", path_);
  }
  Handle space(checked(H5Screate_simple(1, &n, nullptr), "H5Screate_simple", path_), H5Sclose);
  Handle ds(checked(H5Dcreate2(state_->file.get(), name.c_str(), type.get(), space.get(), lcpl.get(), dcpl.get(),
                               H5P_DEFAULT),
                    "H5Dcreate2", path_ + ":" + name),
            H5Dclose);
  state_->datasets[name] = std::move(ds);
  state_->shapes[name] = {n};
  state_->string_widths[name] = static_cast<std::size_t>(width);
}

void H5Output::write_string_rows(const std::string& name, std::uint64_t row0, const std::vector<std::string>& values) {
  maybe_killed_in_write(comm_, path_);
  auto it = state_->datasets.find(name);
  if (it == state_->datasets.end() || !state_->string_widths.count(name))
    throw std::logic_error("write_string_rows: unknown string dataset " + name);
  const auto& dims = state_->shapes[name];
  if (dims[0] == 0) return;
  const std::size_t width = state_->string_widths[name];
  std::vector<char> buf(std::max<std::size_t>(1, width * values.size()), '\0');
  for (std::size_t i = 0; i < values.size(); ++i) {
    if (values[i].size() > width) throw std::logic_error("string longer than the agreed width in " + name);
    std::memcpy(buf.data() + i * width, values[i].data(), values[i].size());
  }
  Handle type = string_type(width, path_);
  Handle fspace(checked(H5Dget_space(it->second.get()), "H5Dget_space", path_), H5Sclose);
  Handle mspace = select_slab(fspace.get(), dims, 0, row0, values.size(), path_);
  checked_status(H5Dwrite(it->second.get(), type.get(), mspace.get(), fspace.get(), state_->dxpl.get(), buf.data()),
                 "H5Dwrite", path_ + ":" + name);
}

namespace {
hid_t object_of(hid_t file, const std::map<std::string, Handle>& datasets, const std::string& object) {
  if (object == "/") return file;
  auto it = datasets.find(object);
  if (it != datasets.end()) return it->second.get();
  throw std::logic_error("set_attribute: unknown object " + object);
}
}  // namespace

void H5Output::set_attribute(const std::string& object, const std::string& name, const std::string& value) {
  write_string_attribute(object_of(state_->file.get(), state_->datasets, object), name, {value}, true, path_);
}

void H5Output::set_attribute(const std::string& object, const std::string& name, const std::vector<std::string>& values) {
  write_string_attribute(object_of(state_->file.get(), state_->datasets, object), name, values, false, path_);
}

void H5Output::set_attribute(const std::string& object, const std::string& name, long long value) {
  write_scalar_attribute(object_of(state_->file.get(), state_->datasets, object), name, H5T_STD_I64LE, H5T_NATIVE_LLONG, &value, path_);
}

void H5Output::set_attribute(const std::string& object, const std::string& name, double value) {
  write_scalar_attribute(object_of(state_->file.get(), state_->datasets, object), name, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, &value, path_);
}

std::string H5Output::commit() {
  const auto shapes = state_->shapes;
  state_->datasets.clear();
  state_->dxpl.reset();
  mpi::on_all(comm_, [&] {
    const hid_t file = state_->file.release();  // a failed close is not retried by the handle
    if (H5Fclose(file) < 0) {
      g_hdf5_file_left_open = true;
      checked_status(-1, "H5Fclose", path_);
    }
  });
  std::string hash;
  mpi::on_root(comm_, [&] {
    {
      H5Input check(partial_);
      if (!check.has_attribute("/", "lmtopo_schema")) throw RuntimeFailure(partial_ + ": verification failed: no schema");
      for (const auto& [name, dims] : shapes) {
        const auto info = check.dataset(name);
        if (info.shape != std::vector<std::uint64_t>(dims.begin(), dims.end()))
          throw RuntimeFailure(partial_ + ": verification failed: " + name + " has the wrong shape");
      }
    }
    if (std::rename(partial_.c_str(), path_.c_str()) != 0)
      throw RuntimeFailure(path_ + ": cannot rename the completed file from " + partial_);
    hash = core::sha256_file(path_);
  });
  committed_ = true;
  return mpi::broadcast_string(comm_, hash);
}

// ---------------------------------------------------------------------------------------------

H5Input::H5Input(const std::string& path) : path_(path), file_(-1) {
  configure_hdf5_environment();
#if H5_VERSION_GE(1, 12, 0)
  const htri_t is_hdf5 = H5Fis_accessible(path.c_str(), H5P_DEFAULT);
#else
  const htri_t is_hdf5 = H5Fis_hdf5(path.c_str());
#endif
  if (is_hdf5 <= 0)
    throw InputError(path + ": not a readable HDF5 file (missing, truncated or corrupt)");
  file_ = H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT);
  if (file_ < 0) throw InputError(path + ": cannot open as HDF5 (corrupt file?)");
}

H5Input::~H5Input() {
  if (file_ >= 0) H5Fclose(static_cast<hid_t>(file_));
}

bool H5Input::has_attribute(const std::string& object, const std::string& name) const {
  const hid_t f = static_cast<hid_t>(file_);
  return H5Aexists_by_name(f, object.c_str(), name.c_str(), H5P_DEFAULT) > 0;
}

std::string H5Input::string_attribute(const std::string& object, const std::string& name) const {
  if (!has_attribute(object, name)) throw InputError(path_ + ": " + object + " has no attribute '" + name + "'");
  Handle obj(checked(H5Oopen(static_cast<hid_t>(file_), object.c_str(), H5P_DEFAULT), "H5Oopen", path_), H5Oclose);
  return read_attribute_text(obj.get(), name, path_);
}

std::map<std::string, std::string> H5Input::root_attributes() const {
  return attributes_of(static_cast<hid_t>(file_), path_);
}

bool H5Input::has_dataset(const std::string& name) const {
  const hid_t f = static_cast<hid_t>(file_);
  // Check each path component so that a missing group is not an HDF5 error.
  std::string partial;
  std::size_t pos = 0;
  while (pos != std::string::npos) {
    pos = name.find('/', pos + 1);
    partial = name.substr(0, pos);
    if (partial.empty() || partial == "/") continue;
    if (H5Lexists(f, partial.c_str(), H5P_DEFAULT) <= 0) return false;
  }
  Handle obj(H5Oopen(f, name.c_str(), H5P_DEFAULT), H5Oclose);
  return obj.get() >= 0 && H5Iget_type(obj.get()) == H5I_DATASET;
}

DatasetInfo H5Input::dataset(const std::string& name) const {
  if (!has_dataset(name)) throw InputError(path_ + ": missing dataset " + name);
  Handle ds(checked(H5Dopen2(static_cast<hid_t>(file_), name.c_str(), H5P_DEFAULT), "H5Dopen2", path_), H5Dclose);
  Handle space(checked(H5Dget_space(ds.get()), "H5Dget_space", path_), H5Sclose);
  Handle type(checked(H5Dget_type(ds.get()), "H5Dget_type", path_), H5Tclose);
  DatasetInfo info;
  info.path = name;
  const int rank = H5Sget_simple_extent_ndims(space.get());
  std::vector<hsize_t> dims(static_cast<std::size_t>(std::max(rank, 0)));
  if (rank > 0) H5Sget_simple_extent_dims(space.get(), dims.data(), nullptr);
  info.shape.assign(dims.begin(), dims.end());
  info.attributes = attributes_of(ds.get(), path_);
  const H5T_class_t cls = H5Tget_class(type.get());
  const std::size_t size = H5Tget_size(type.get());
  if (cls == H5T_FLOAT) info.dtype = size == 4 ? "float32" : size == 8 ? "float64" : "float";
  else if (cls == H5T_INTEGER) info.dtype = info.attributes.count("lmtopo_dtype") ? info.attributes["lmtopo_dtype"]
                                           : size == 8 ? "int64" : "int" + std::to_string(8 * size);
  else if (cls == H5T_STRING) info.dtype = "string";
  else info.dtype = "other";
  return info;
}

std::vector<DatasetInfo> H5Input::datasets() const {
  std::vector<std::string> names;
  H5Lvisit(static_cast<hid_t>(file_), H5_INDEX_NAME, H5_ITER_INC, collect_link, &names);
  std::vector<DatasetInfo> out;
  for (const auto& n : names)
    if (has_dataset(n)) out.push_back(dataset(n));
  return out;
}

namespace {
template <class T>
std::vector<T> read_all(hid_t file, const std::string& path, const std::string& name, hid_t mem_type) {
  Handle ds(checked(H5Dopen2(file, name.c_str(), H5P_DEFAULT), "H5Dopen2", path + ":" + name), H5Dclose);
  Handle space(checked(H5Dget_space(ds.get()), "H5Dget_space", path), H5Sclose);
  const hssize_t n = H5Sget_simple_extent_npoints(space.get());
  std::vector<T> out(static_cast<std::size_t>(std::max<hssize_t>(n, 0)));
  if (n > 0)
    checked_status(H5Dread(ds.get(), mem_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, out.data()), "H5Dread", path + ":" + name);
  return out;
}
}  // namespace

std::vector<float> H5Input::read_f32(const std::string& name) const {
  return read_all<float>(static_cast<hid_t>(file_), path_, name, H5T_NATIVE_FLOAT);
}
std::vector<float> H5Input::read_f32_rows(const std::string& name, std::uint64_t row0, std::uint64_t rows) const {
  const auto info = dataset(name);
  if (info.shape.empty() || row0 + rows > info.shape[0])
    throw InputError(path_ + ":" + name + ": rows [" + std::to_string(row0) + ", " + std::to_string(row0 + rows) +
                     ") outside the dataset");
  std::vector<std::uint64_t> start(info.shape.size(), 0), count(info.shape.begin(), info.shape.end());
  start[0] = row0;
  count[0] = rows;
  return read_f32_block(name, start, count);
}

std::vector<float> H5Input::read_f32_block(const std::string& name, const std::vector<std::uint64_t>& start,
                                           const std::vector<std::uint64_t>& count) const {
  const auto info = dataset(name);
  if (start.size() != info.shape.size() || count.size() != info.shape.size())
    throw InputError(path_ + ":" + name + ": expected a block of rank " + std::to_string(info.shape.size()));
  std::size_t values = 1;
  for (std::size_t i = 0; i < count.size(); ++i) {
    if (start[i] + count[i] > info.shape[i])
      throw InputError(path_ + ":" + name + ": block beyond the dataset on axis " + std::to_string(i));
    values *= count[i];
  }
  std::vector<float> out(values);
  if (values == 0) return out;
  Handle ds(checked(H5Dopen2(static_cast<hid_t>(file_), name.c_str(), H5P_DEFAULT), "H5Dopen2", path_ + ":" + name), H5Dclose);
  Handle fspace(checked(H5Dget_space(ds.get()), "H5Dget_space", path_), H5Sclose);
  const std::vector<hsize_t> h_start(start.begin(), start.end()), h_count(count.begin(), count.end());
  checked_status(H5Sselect_hyperslab(fspace.get(), H5S_SELECT_SET, h_start.data(), nullptr, h_count.data(), nullptr),
                 "H5Sselect_hyperslab", path_);
  Handle mspace(checked(H5Screate_simple(static_cast<int>(h_count.size()), h_count.data(), nullptr), "H5Screate_simple", path_),
                H5Sclose);
  if (info.dtype == "bfloat16") {
    std::vector<std::uint16_t> raw(values);
    checked_status(H5Dread(ds.get(), H5T_NATIVE_UINT16, mspace.get(), fspace.get(), H5P_DEFAULT, raw.data()), "H5Dread", path_);
    for (std::size_t i = 0; i < values; ++i) {
      const std::uint32_t bits = static_cast<std::uint32_t>(raw[i]) << 16;
      std::memcpy(&out[i], &bits, sizeof(float));
    }
  } else {
    checked_status(H5Dread(ds.get(), H5T_NATIVE_FLOAT, mspace.get(), fspace.get(), H5P_DEFAULT, out.data()), "H5Dread", path_);
  }
  return out;
}

std::vector<double> H5Input::read_f64(const std::string& name) const {
  return read_all<double>(static_cast<hid_t>(file_), path_, name, H5T_NATIVE_DOUBLE);
}
std::vector<long long> H5Input::read_i64(const std::string& name) const {
  return read_all<long long>(static_cast<hid_t>(file_), path_, name, H5T_NATIVE_LLONG);
}

std::vector<std::string> H5Input::read_strings(const std::string& name) const {
  Handle ds(checked(H5Dopen2(static_cast<hid_t>(file_), name.c_str(), H5P_DEFAULT), "H5Dopen2", path_ + ":" + name),
            H5Dclose);
  Handle type(checked(H5Dget_type(ds.get()), "H5Dget_type", path_), H5Tclose);
  if (H5Tget_class(type.get()) != H5T_STRING) throw InputError(path_ + ":" + name + ": expected strings");
  Handle space(checked(H5Dget_space(ds.get()), "H5Dget_space", path_), H5Sclose);
  const auto n = static_cast<std::size_t>(H5Sget_simple_extent_npoints(space.get()));
  if (H5Tis_variable_str(type.get()) > 0) {  // as h5py writes Python str lists
    std::vector<char*> ptrs(n, nullptr);
    Handle mt(checked(H5Tcopy(H5T_C_S1), "H5Tcopy", path_), H5Tclose);
    H5Tset_size(mt.get(), H5T_VARIABLE);
    H5Tset_cset(mt.get(), H5Tget_cset(type.get()));
    if (n > 0) checked_status(H5Dread(ds.get(), mt.get(), H5S_ALL, H5S_ALL, H5P_DEFAULT, ptrs.data()), "H5Dread", path_);
    std::vector<std::string> out(n);
    for (std::size_t i = 0; i < n; ++i) out[i] = ptrs[i] ? ptrs[i] : "";
    if (n > 0) H5Dvlen_reclaim(mt.get(), space.get(), H5P_DEFAULT, ptrs.data());
    return out;
  }
  const std::size_t width = H5Tget_size(type.get());
  std::vector<char> buf(std::max<std::size_t>(1, n * width));
  if (n > 0) checked_status(H5Dread(ds.get(), type.get(), H5S_ALL, H5S_ALL, H5P_DEFAULT, buf.data()), "H5Dread", path_);
  std::vector<std::string> out(n);
  for (std::size_t i = 0; i < n; ++i) out[i] = std::string(buf.data() + i * width, strnlen(buf.data() + i * width, width));
  return out;
}

void RootWriter::strings(const std::string& name, const std::vector<std::string>& v) {
  std::size_t width = 1;
  for (const auto& s : v) width = std::max(width, s.size());
  out.create_strings(name, v.size(), width, false);
  out.write_string_rows(name, 0, root ? v : std::vector<std::string>{});
}

void RootWriter::numbers(const std::string& name, DType t, const std::vector<std::uint64_t>& shape, const void* data) {
  out.create_numeric(name, t, shape, false);
  out.write_rows(name, 0, root ? shape[0] : 0, data);
}

}  // namespace lmtopo::io
