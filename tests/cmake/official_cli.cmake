# official_cli: mtlora_dist under mpirun with the official main.py command
# line (the README's two commands, --pascal packing and its cache, --eval,
# refusals) on a synthetic PASCAL_MT set and a tiny Swin.
add_test(NAME official_cli
  COMMAND ${MTLORA_PYTHON} ${CMAKE_CURRENT_SOURCE_DIR}/official_cli_test.py $<TARGET_FILE:mtlora_dist>
          $<TARGET_FILE:mtlora-pack> ${CMAKE_CURRENT_BINARY_DIR}/official_cli)
set_tests_properties(official_cli PROPERTIES TIMEOUT 600)
