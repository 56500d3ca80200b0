# json_hostile: hostile-input and fault tests (issue 14)
# The strict JSON reader (io/json_file.c) and adapter_config.json's checks
# (src/model/adapter_peft.c) on malformed numbers, NUL, bad escapes, invalid
# UTF-8, duplicate keys, deep nesting, FIFOs, and every field of the file.
add_executable(test_json_hostile test_json_hostile.c)
target_link_libraries(test_json_hostile PRIVATE mtlora_testutil)
add_test(NAME json_hostile COMMAND test_json_hostile)
