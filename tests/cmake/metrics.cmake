# Evaluation metrics (src/train/metrics*.c) against the official MTLoRA meters:
# the fixture runs a port of the official evaluation code with torch on
# generated batches and writes the inputs and expected scores.
add_executable(test_metrics test_metrics.c)
target_link_libraries(test_metrics PRIVATE mtlora_testutil)

set(MTLORA_METRICS_CASES ${CMAKE_CURRENT_BINARY_DIR}/metrics_cases)
add_test(NAME metrics_reference_cases
  COMMAND ${MTLORA_PYTHON} ${CMAKE_CURRENT_SOURCE_DIR}/reference/metrics_reference.py ${MTLORA_METRICS_CASES})
set_tests_properties(metrics_reference_cases PROPERTIES FIXTURES_SETUP metrics_cases)

add_test(NAME metrics COMMAND test_metrics)
set_tests_properties(metrics PROPERTIES FIXTURES_REQUIRED metrics_cases
  ENVIRONMENT "MTLORA_METRICS_CASES=${MTLORA_METRICS_CASES}")
