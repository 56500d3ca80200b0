# pascal_hostile: hostile-input and fault tests (issue 14)
# The PASCAL packer against hostile MAT files (mat5_writer's hostile forms),
# libmatio's worker dying by crash, hang or memory cap, and a pack with one
# bad MAT file that packs the rest and resumes once it is repaired. Links
# only the packer's library and Check (serial HDF5, as test_synthetic).
add_executable(test_pascal_hostile test_pascal_hostile.c)
target_link_libraries(test_pascal_hostile PRIVATE mtlora_pascal PkgConfig::CHECK)
add_test(NAME pascal_hostile COMMAND test_pascal_hostile)
set_tests_properties(pascal_hostile PROPERTIES TIMEOUT 300)
