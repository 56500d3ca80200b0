# Edge targets (src/edge_map.c) against the official loader's
# thin(|cv2.Laplacian(LabelMap)| > 0): the fixture writes the reference cases
# with real OpenCV and a port of skimage's thin (scikit-image is not needed).
add_executable(test_edge_map test_edge_map.c)
target_link_libraries(test_edge_map PRIVATE mtlora_testutil)

set(MTLORA_EDGE_CASES ${CMAKE_CURRENT_BINARY_DIR}/edge_cases)
add_test(NAME edge_reference_cases
  COMMAND ${MTLORA_PYTHON} ${CMAKE_CURRENT_SOURCE_DIR}/reference/edge_reference.py ${MTLORA_EDGE_CASES})
set_tests_properties(edge_reference_cases PROPERTIES FIXTURES_SETUP edge_cases)

add_test(NAME edge_map COMMAND test_edge_map)
set_tests_properties(edge_map PROPERTIES FIXTURES_REQUIRED edge_cases
  ENVIRONMENT "MTLORA_EDGE_CASES=${MTLORA_EDGE_CASES}")
