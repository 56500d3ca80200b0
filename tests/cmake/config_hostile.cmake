# config_hostile: hostile-input and fault tests (issue 14): configurations
# with numbers that would be undefined behaviour, alias bombs, a second
# document, deep nesting, bytes that are not text, repeated keys, and the
# writer's round trip of any string (tests/test_config_hostile.c).
add_executable(test_config_hostile ${CMAKE_CURRENT_SOURCE_DIR}/test_config_hostile.c)
target_link_libraries(test_config_hostile PRIVATE mtlora_testutil)
add_test(NAME config_hostile COMMAND test_config_hostile)
