# The synthetic PASCAL-Context set. test_synthetic links only the packer's
# library and Check: mtlora_testutil/mtlora_train bring the parallel HDF5,
# which must not share a process with matio's serial one. It leaves its set
# in MTLORA_SYNTHETIC_DIR, where the official loader's reading code
# (tests/reference/synthetic_check.py) then reads it.
add_executable(test_synthetic test_synthetic.c)
target_link_libraries(test_synthetic PRIVATE mtlora_pascal PkgConfig::CHECK)

set(MTLORA_SYNTHETIC_DIR ${CMAKE_CURRENT_BINARY_DIR}/synthetic_set)
add_test(NAME synthetic COMMAND test_synthetic)
set_tests_properties(synthetic PROPERTIES FIXTURES_SETUP synthetic_set
  ENVIRONMENT "MTLORA_SYNTHETIC_DIR=${MTLORA_SYNTHETIC_DIR}")

add_test(NAME synthetic_official_loader
  COMMAND ${MTLORA_PYTHON} ${CMAKE_CURRENT_SOURCE_DIR}/reference/synthetic_check.py
          ${MTLORA_SYNTHETIC_DIR})
set_tests_properties(synthetic_official_loader PROPERTIES FIXTURES_REQUIRED synthetic_set)
