# plot: launch/plot (gnuplot) on two short mtlora_dist runs on a packed
# synthetic set: every expected PNG, its size, not blank, two runs overlaid,
# and the refusals (issue 16 item 3). Skipped when gnuplot is not installed.
add_test(NAME plot
  COMMAND ${MTLORA_PYTHON} ${CMAKE_CURRENT_SOURCE_DIR}/plot_test.py $<TARGET_FILE:mtlora_dist>
          $<TARGET_FILE:mtlora-pack> ${CMAKE_CURRENT_SOURCE_DIR}/data/dist_tiny.yaml
          ${PROJECT_SOURCE_DIR}/launch/plot ${CMAKE_CURRENT_BINARY_DIR}/plot)
set_tests_properties(plot PROPERTIES TIMEOUT 300 SKIP_RETURN_CODE 77)
