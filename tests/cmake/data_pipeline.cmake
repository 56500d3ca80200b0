# Augmentation parity against the official transforms (real OpenCV/numpy/torch).
add_executable(test_augment test_augment.c)
target_link_libraries(test_augment PRIVATE mtlora_testutil)
set(MTLORA_AUGMENT_CASES ${CMAKE_CURRENT_BINARY_DIR}/augment_cases)
add_test(NAME augment_reference_cases
  COMMAND ${MTLORA_PYTHON} ${CMAKE_CURRENT_SOURCE_DIR}/reference/augment_reference.py ${MTLORA_AUGMENT_CASES})
set_tests_properties(augment_reference_cases PROPERTIES FIXTURES_SETUP augment_cases)
add_test(NAME augment COMMAND test_augment)
set_tests_properties(augment PROPERTIES FIXTURES_REQUIRED augment_cases
  ENVIRONMENT "MTLORA_AUGMENT_CASES=${MTLORA_AUGMENT_CASES}")
