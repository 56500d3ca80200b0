# checkpoint_faults: hostile-input and fault tests (issue 14)
# Checkpoints that cannot lose a run (src/train/checkpoint.c): retention by
# run identity, every state field and value range-checked, the checksum over
# the header, non-regular files, "starting fresh" beside unusable files.
add_executable(test_checkpoint test_checkpoint.c)
target_link_libraries(test_checkpoint PRIVATE mtlora_testutil)
add_test(NAME checkpoint COMMAND test_checkpoint)

# The same through mtlora_dist under mpirun, and the faults: disk full while
# writing, kill -9 of rank 0 inside writes, a chaos run of SIGUSR1 / SIGTERM
# / kill -9 ending bit-identical to an uninterrupted run. MTLORA_CHAOS_SEED
# in the environment picks other interruption points (default 14).
add_test(NAME checkpoint_faults
  COMMAND ${MTLORA_PYTHON} ${CMAKE_CURRENT_SOURCE_DIR}/ckpt_fault_test.py $<TARGET_FILE:mtlora_dist>
          ${CMAKE_CURRENT_SOURCE_DIR}/data/dist_tiny.yaml ${CMAKE_CURRENT_BINARY_DIR}/ckpt_faults)
set_tests_properties(checkpoint_faults PROPERTIES TIMEOUT 900)
