# shard_hostile: hostile shards and manifests (issue 14): tampered HDF5
# attributes, index and record datasets, manifests as text, and
# `mtlora-pack --verify` on split directories the suite builds.
add_executable(test_shard_hostile test_shard_hostile.c)
add_dependencies(test_shard_hostile mtlora-pack) # the verify tests run it
target_link_libraries(test_shard_hostile PRIVATE mtlora_shards PkgConfig::CHECK)
set(MTLORA_SHARD_HOSTILE_TMP ${CMAKE_CURRENT_BINARY_DIR}/shard_hostile)
file(MAKE_DIRECTORY ${MTLORA_SHARD_HOSTILE_TMP})
add_test(NAME shard_hostile COMMAND test_shard_hostile)
set_tests_properties(shard_hostile PROPERTIES TIMEOUT 300
  ENVIRONMENT "MTLORA_PACK=$<TARGET_FILE:mtlora-pack>;MTLORA_SHARD_TMP=${MTLORA_SHARD_HOSTILE_TMP}")
