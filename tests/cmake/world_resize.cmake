# world_resize: resume on another number of ranks and the bad-record policy
# (issue 14 items 6 and 5), mtlora_dist under mpirun on a tiny packed set.
add_test(NAME world_resize
  COMMAND ${MTLORA_PYTHON} ${CMAKE_CURRENT_SOURCE_DIR}/world_resize_test.py $<TARGET_FILE:mtlora_dist>
          $<TARGET_FILE:mtlora-pack> ${CMAKE_CURRENT_SOURCE_DIR}/data/dist_tiny.yaml
          ${CMAKE_CURRENT_BINARY_DIR}/world_resize)
set_tests_properties(world_resize PROPERTIES TIMEOUT 900)
add_test(NAME bad_records
  COMMAND ${MTLORA_PYTHON} ${CMAKE_CURRENT_SOURCE_DIR}/bad_record_test.py $<TARGET_FILE:mtlora_dist>
          $<TARGET_FILE:mtlora-pack> ${CMAKE_CURRENT_SOURCE_DIR}/data/dist_tiny.yaml
          ${CMAKE_CURRENT_BINARY_DIR}/bad_records)
set_tests_properties(bad_records PROPERTIES TIMEOUT 600)
# The loader's training options: whole groups per epoch, bad records replaced
# (on pack_cli's shards and its corrupt copy).
add_executable(test_loader_train test_loader_train.c)
target_link_libraries(test_loader_train PRIVATE mtlora_testutil)
add_test(NAME loader_train COMMAND test_loader_train)
set_tests_properties(loader_train PROPERTIES FIXTURES_REQUIRED packed_shards
  ENVIRONMENT "MTLORA_SHARDS=${MTLORA_PACK_WORK}/shards")
