# PASCAL MAT files (io/pascal/mat_reader.c, mat_precheck.c): bytes as a MAT
# file, prechecked and parsed in process through the accessor as human_parts
# and as LabelMap. Links the packer's library (serial HDF5 with libmatio).
mtlora_add_fuzzer(NAME mat SOURCE fuzz_mat.c SEED seed_mat.c LIBS mtlora_pascal MAX_LEN 16384)
