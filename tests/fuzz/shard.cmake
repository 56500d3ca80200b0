# Shard reader (io/shards/shard_reader.c, the attribute reader in
# shard_format.c): edit programs applied through HDF5 to a valid shard,
# then opened and every record read whole (fuzz_shard.c).
mtlora_add_fuzzer(NAME shard SOURCE fuzz_shard.c SEED seed_shard.c LIBS mtlora_shards MAX_LEN 4096)

# fuzz_shard_raw: arbitrary bytes as a shard file. libhdf5's own decoder
# crashes on such files within seconds under libFuzzer (fuzz_shard_raw.c),
# so it is not one of launch/fuzz's targets: run it by hand,
#   MTLORA_FUZZ_TMP=/tmp build-fuzz/tests/fuzz/fuzz_shard_raw -max_total_time=60 build-fuzz/corpus/shard_raw
# ctest replays the writer's shards with truncations and byte flips.
add_executable(fuzz_shard_raw fuzz_shard_raw.c)
target_link_libraries(fuzz_shard_raw PRIVATE mtlora_shards)
set(shard_raw_corpus ${MTLORA_FUZZ_CORPUS_DIR}/shard_raw)
file(MAKE_DIRECTORY ${shard_raw_corpus})
if(MTLORA_FUZZ)
  target_link_options(fuzz_shard_raw PRIVATE -fsanitize=fuzzer)
  add_dependencies(mtlora_fuzzers fuzz_shard_raw)
  set(shard_raw_replay $<TARGET_FILE:fuzz_shard_raw> -runs=0 -rss_limit_mb=2048 -timeout=10 ${shard_raw_corpus})
else()
  target_link_libraries(fuzz_shard_raw PRIVATE mtlora_fuzz_driver)
  set(shard_raw_replay $<TARGET_FILE:fuzz_shard_raw> ${shard_raw_corpus})
endif()
add_test(NAME fuzz_seed_shard_raw
  COMMAND ${CMAKE_COMMAND} -E env MTLORA_FUZZ_TMP=${MTLORA_FUZZ_TMP_DIR}
          $<TARGET_FILE:seed_shard> --h5 ${shard_raw_corpus})
set_tests_properties(fuzz_seed_shard_raw PROPERTIES FIXTURES_SETUP fuzz_corpus_shard_raw LABELS fuzz)
add_test(NAME fuzz_replay_shard_raw COMMAND ${shard_raw_replay})
set_tests_properties(fuzz_replay_shard_raw PROPERTIES FIXTURES_REQUIRED fuzz_corpus_shard_raw
  LABELS fuzz ENVIRONMENT "MTLORA_FUZZ_TMP=${MTLORA_FUZZ_TMP_DIR}")
