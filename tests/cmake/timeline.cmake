# timeline: RUN.TIMELINE / --timeline (issue 16 item 4): the trace-event
# file of 2 ranks (valid JSON, nesting, per-rank tracks, buckets inside their
# step, the ring of the last RUN.TIMELINE_STEPS updates), and a file that
# cannot be written (missing directory, a file-size limit, a FIFO nobody
# reads) never failing or stalling the run.
add_test(NAME timeline
  COMMAND ${MTLORA_PYTHON} ${CMAKE_CURRENT_SOURCE_DIR}/timeline_test.py $<TARGET_FILE:mtlora_dist>
          $<TARGET_FILE:mtlora-pack> ${CMAKE_CURRENT_SOURCE_DIR}/data/dist_tiny.yaml
          ${CMAKE_CURRENT_BINARY_DIR}/timeline)
set_tests_properties(timeline PROPERTIES TIMEOUT 600)
