# Generates embedded_schemas.inc: every schemas/*.json and schemas/hdf5/*.json as a raw string.
# Run at build time (cmake -P) so that editing a schema rebuilds the binary.
file(GLOB files "${SCHEMA_DIR}/*.json" "${SCHEMA_DIR}/hdf5/*.json")
list(SORT files)
set(out "// Generated from schemas/ by cmake/EmbedSchemas.cmake. Do not edit.\n")
string(APPEND out "const std::pair<const char*, const char*> kEmbeddedSchemas[] = {\n")
foreach(f ${files})
  get_filename_component(name ${f} NAME)
  file(READ ${f} text)
  string(APPEND out "  {\"${name}\", R\"lmtopo_schema(${text})lmtopo_schema\"},\n")
endforeach()
string(APPEND out "};\n")
file(WRITE "${OUTPUT}.new" "${out}")
execute_process(COMMAND ${CMAKE_COMMAND} -E copy_if_different "${OUTPUT}.new" "${OUTPUT}")
