// The one module that owns HDF5. Outputs are written collectively by all ranks of a communicator
// into one file (MPI-IO, collective transfers, chunked, optional deflate) under a temporary name,
// verified and then renamed, so an interrupted write never leaves a file that looks complete.
// Every output carries the provenance attributes of design.md contract 5.
#pragma once
#include <mpi.h>

#include <cstdint>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace lmtopo::io {

enum class DType { f32, f64, i64, bf16 };
std::string dtype_name(DType t);  // "float32", "float64", "int64", "bfloat16"

// Set HDF5_USE_FILE_LOCKING=FALSE unless the user chose: HDF5's flock-based locking fails or hangs on
// NFS/Lustre, and lmtopo already makes outputs atomic by rename. Call before the first HDF5 call.
void configure_hdf5_environment();

// True once an output file could not be closed (HDF5 1.10.8 keeps such a file's ID after H5Fclose fails,
// e.g. on a full disk, and its own clean-up at MPI_Finalize then crashes on it): the process should exit
// without MPI_Finalize (main does), which is safe because it is failing anyway.
bool hdf5_file_left_open();

class H5Output {
 public:
  // Collective over `comm`. Creates `path + ".partial"` (replacing a stale one) and writes the root
  // provenance attributes: lmtopo_schema, lmtopo_version, git_sha, git_dirty, config_json, created_by.
  H5Output(std::string path, MPI_Comm comm, const std::string& schema, const nlohmann::json& config);
  ~H5Output();  // removes the partial file unless commit() succeeded
  H5Output(const H5Output&) = delete;
  H5Output& operator=(const H5Output&) = delete;

  // Collective. Numeric dataset. chunk_rows = 0 picks about 1 MiB chunks (leading axes split first);
  // otherwise chunks are chunk_rows along axis 0 and whole along the others.
  void create_numeric(const std::string& name, DType type, const std::vector<std::uint64_t>& shape, bool deflate,
                      std::uint64_t chunk_rows = 0);
  // Collective: this rank writes rows [row0, row0 + rows) (rows may be 0: the rank still takes part).
  // `data` holds rows * (product of the other dimensions) values of the dataset's type (bf16 as
  // uint16 bit patterns).
  void write_rows(const std::string& name, std::uint64_t row0, std::uint64_t rows, const void* data) {
    write_slab(name, 0, row0, rows, data);
  }
  // Collective: this rank writes indices [offset, offset + count) along `axis` and everything along
  // the other axes (e.g. its prompts of an activation tensor [points, prompts, hidden] with axis 1).
  // `data` is row-major in the slab's shape.
  void write_slab(const std::string& name, std::size_t axis, std::uint64_t offset, std::uint64_t count,
                  const void* data);

  // Collective. One-dimensional dataset of UTF-8 strings. The width is the longest string any rank
  // will write (agreed here by an all-reduce of `local_max_bytes`).
  void create_strings(const std::string& name, std::uint64_t rows, std::size_t local_max_bytes, bool deflate);
  void write_string_rows(const std::string& name, std::uint64_t row0, const std::vector<std::string>& values);

  // Collective; every rank passes the same value. `object` is "/" or a dataset/group path.
  void set_attribute(const std::string& object, const std::string& name, const std::string& value);
  void set_attribute(const std::string& object, const std::string& name, long long value);
  void set_attribute(const std::string& object, const std::string& name, double value);
  void set_attribute(const std::string& object, const std::string& name, const std::vector<std::string>& values);

  // Collective: closes, verifies the file from rank 0 (opens, checks the schema attribute and every
  // dataset's shape), renames it to its final name and returns its sha256 on every rank.
  std::string commit();

  const std::string& path() const { return path_; }

 private:
  // Collective: a RuntimeFailure when the file system lacks room for `planned_bytes` of datasets.
  void require_space(std::uint64_t planned_bytes);
  struct State;
  std::string path_;
  std::string partial_;
  MPI_Comm comm_;
  std::unique_ptr<State> state_;
  bool committed_ = false;
};

struct DatasetInfo {
  std::string path;
  std::string dtype;  // float32, float64, int64, bfloat16, string, other
  std::vector<std::uint64_t> shape;
  std::map<std::string, std::string> attributes;  // string/integer attributes rendered as text
};

// Datasets written whole by one rank (`root`); the other ranks take part in the collective calls with
// no rows.
struct RootWriter {
  H5Output& out;
  bool root;
  void strings(const std::string& name, const std::vector<std::string>& v);
  void numbers(const std::string& name, DType t, const std::vector<std::uint64_t>& shape, const void* data);
};

// Serial read access (any rank, no MPI needed).
class H5Input {
 public:
  explicit H5Input(const std::string& path);  // throws InputError naming the file if not HDF5
  ~H5Input();
  H5Input(const H5Input&) = delete;
  H5Input& operator=(const H5Input&) = delete;

  bool has_attribute(const std::string& object, const std::string& name) const;
  std::string string_attribute(const std::string& object, const std::string& name) const;
  std::map<std::string, std::string> root_attributes() const;
  std::vector<DatasetInfo> datasets() const;
  bool has_dataset(const std::string& name) const;
  DatasetInfo dataset(const std::string& name) const;

  std::vector<float> read_f32(const std::string& name) const;
  // Rows [row0, row0 + rows) along axis 0 (e.g. one layer of an activation tensor), as float32;
  // bfloat16 datasets are widened.
  std::vector<float> read_f32_rows(const std::string& name, std::uint64_t row0, std::uint64_t rows) const;
  // A hyperslab [start, start + count) of every axis, as float32 (bfloat16 widened), row-major.
  std::vector<float> read_f32_block(const std::string& name, const std::vector<std::uint64_t>& start,
                                    const std::vector<std::uint64_t>& count) const;
  std::vector<double> read_f64(const std::string& name) const;
  std::vector<long long> read_i64(const std::string& name) const;
  std::vector<std::string> read_strings(const std::string& name) const;

 private:
  std::string path_;
  long long file_;  // hid_t
};

}  // namespace lmtopo::io
