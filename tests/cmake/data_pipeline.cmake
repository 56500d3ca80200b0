# Augmentation parity against the official transforms (real OpenCV/numpy/torch).
add_executable(test_augment test_augment.c)
target_link_libraries(test_augment PRIVATE mtlora_testutil)
set(MTLORA_AUGMENT_CASES ${CMAKE_CURRENT_BINARY_DIR}/augment_cases)
add_test(NAME augment_reference_cases
  COMMAND ${MTLORA_PYTHON} ${CMAKE_CURRENT_SOURCE_DIR}/reference/augment_reference.py ${MTLORA_AUGMENT_CASES})
set_tests_properties(augment_reference_cases PROPERTIES FIXTURES_SETUP augment_cases)
add_test(NAME augment COMMAND test_augment)
set_tests_properties(augment PROPERTIES FIXTURES_REQUIRED augment_cases
  ENVIRONMENT "MTLORA_AUGMENT_CASES=${MTLORA_AUGMENT_CASES}")

# Packer end to end on a synthetic set: pack, verify, restart, parity of the
# packed labels with a port of the official loader, and every bad input.
set(MTLORA_PACK_WORK ${CMAKE_CURRENT_BINARY_DIR}/pack_cli)
add_test(NAME pack_cli
  COMMAND ${MTLORA_PYTHON} ${CMAKE_CURRENT_SOURCE_DIR}/pack_cli_test.py $<TARGET_FILE:mtlora-pack>
          ${MTLORA_PACK_WORK})
set_tests_properties(pack_cli PROPERTIES FIXTURES_SETUP packed_shards TIMEOUT 600)

add_executable(test_loader test_loader.c)
target_link_libraries(test_loader PRIVATE mtlora_testutil)
add_test(NAME shard_loader COMMAND test_loader)
set_tests_properties(shard_loader PROPERTIES FIXTURES_REQUIRED packed_shards
  ENVIRONMENT "MTLORA_SHARDS=${MTLORA_PACK_WORK}/shards")

# mtlora_dist under mpirun: 2 ranks x batch b == 1 rank x batch 2b.
add_test(NAME dist_equivalence
  COMMAND ${MTLORA_PYTHON} ${CMAKE_CURRENT_SOURCE_DIR}/dist_test.py $<TARGET_FILE:mtlora_dist>
          $<TARGET_FILE:mtlora-pack> ${CMAKE_CURRENT_SOURCE_DIR}/data/dist_tiny.yaml ${CMAKE_CURRENT_BINARY_DIR}/dist_test)
set_tests_properties(dist_equivalence PROPERTIES TIMEOUT 600)

# The official LR schedule (scaling, warmup, cosine, stepping order).
add_executable(test_lr_schedule test_lr_schedule.c)
target_link_libraries(test_lr_schedule PRIVATE mtlora_testutil)
set(MTLORA_LR_CASES ${CMAKE_CURRENT_BINARY_DIR}/lr_cases)
add_test(NAME lr_reference_cases
  COMMAND ${MTLORA_PYTHON} ${CMAKE_CURRENT_SOURCE_DIR}/reference/lr_reference.py ${MTLORA_LR_CASES})
set_tests_properties(lr_reference_cases PROPERTIES FIXTURES_SETUP lr_cases)
add_test(NAME lr_schedule COMMAND test_lr_schedule)
set_tests_properties(lr_schedule PROPERTIES FIXTURES_REQUIRED lr_cases
  ENVIRONMENT "MTLORA_LR_CASES=${MTLORA_LR_CASES}")

# A real single-host SLURM cluster running launch/mtlora.sbatch (installs
# slurm-wlm and munge, starts daemons as root): a named target outside the
# default run, `ctest --test-dir build -L cluster`.
add_test(NAME slurm_cluster COMMAND ${CMAKE_SOURCE_DIR}/cluster/slurm/run_test.sh ${CMAKE_BINARY_DIR})
set_tests_properties(slurm_cluster PROPERTIES LABELS cluster TIMEOUT 1800)

# Two hosts made of network namespaces, mpirun across them over TCP, a host
# lost mid-run (root, ip netns): `ctest --test-dir build -L cluster`.
add_test(NAME netns_cluster COMMAND ${CMAKE_SOURCE_DIR}/cluster/netns/run_test.sh ${CMAKE_BINARY_DIR})
set_tests_properties(netns_cluster PROPERTIES LABELS cluster TIMEOUT 1200)
