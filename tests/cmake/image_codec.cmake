# JPEG/PNG codec (io/image_codec.c). The suite compares against PIL on the
# files codec_reference.py writes (Debian's python3-pil and numpy), so that
# script runs first as a fixture, like parity_reference_cases above.
# tensor_bundle.c is compiled in directly rather than through
# mtlora_testutil, so the codec test needs only mtlora_io (no oneDNN, no HDF5).
add_executable(test_image_codec test_image_codec.c tensor_bundle.c)
target_include_directories(test_image_codec PRIVATE ${CMAKE_CURRENT_SOURCE_DIR})
target_link_libraries(test_image_codec PRIVATE mtlora_io mtlora_data PkgConfig::CHECK)

set(MTLORA_CODEC_CASES ${CMAKE_CURRENT_BINARY_DIR}/codec_cases)
add_test(NAME codec_reference_cases
  COMMAND ${MTLORA_PYTHON} ${CMAKE_CURRENT_SOURCE_DIR}/reference/codec_reference.py ${MTLORA_CODEC_CASES})
set_tests_properties(codec_reference_cases PROPERTIES FIXTURES_SETUP codec_cases)

add_test(NAME image_codec COMMAND test_image_codec)
set_tests_properties(image_codec PROPERTIES FIXTURES_REQUIRED codec_cases
  ENVIRONMENT "MTLORA_CODEC_CASES=${MTLORA_CODEC_CASES}")
