# pth: the PyTorch .pth reader and writer (io/pth/, mtlora/io/pth.h).
# pth_cases.py writes files with Debian's torch.save (skipped, exit 77, when
# torch is missing: then the suite runs without the reference cases); the
# suite (test_pth.c, test_pth_hostile.c) needs only mtlora_io. It writes
# files with pth_write into pth_written/, which pth_check.py then reads
# with torch.load(weights_only=True).
add_executable(test_pth test_pth.c test_pth_hostile.c)
target_link_libraries(test_pth PRIVATE mtlora_io PkgConfig::CHECK)

set(MTLORA_PTH_CASES ${CMAKE_CURRENT_BINARY_DIR}/pth_cases)
set(MTLORA_PTH_WRITTEN ${CMAKE_CURRENT_BINARY_DIR}/pth_written)
add_test(NAME pth_reference_cases
  COMMAND ${MTLORA_PYTHON} ${CMAKE_CURRENT_SOURCE_DIR}/reference/pth_cases.py ${MTLORA_PTH_CASES})
set_tests_properties(pth_reference_cases PROPERTIES FIXTURES_SETUP pth_cases SKIP_RETURN_CODE 77)

add_test(NAME pth COMMAND test_pth)
set_tests_properties(pth PROPERTIES FIXTURES_REQUIRED pth_cases FIXTURES_SETUP pth_written
  ENVIRONMENT "MTLORA_PTH_CASES=${MTLORA_PTH_CASES};MTLORA_PTH_OUT=${MTLORA_PTH_WRITTEN}")

add_test(NAME pth_torch_check
  COMMAND ${MTLORA_PYTHON} ${CMAKE_CURRENT_SOURCE_DIR}/reference/pth_check.py ${MTLORA_PTH_WRITTEN})
set_tests_properties(pth_torch_check PROPERTIES FIXTURES_REQUIRED pth_written SKIP_RETURN_CODE 77)
