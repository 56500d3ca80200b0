# fuzz_config: the YAML configuration loader, finalize and the writer's
# round trip (tests/fuzz/fuzz_config.c); seeds from the project's configs.
mtlora_add_fuzzer(NAME config SOURCE fuzz_config.c SEED seed_config.c LIBS mtlora_config
                  MAX_LEN 16384)
target_compile_definitions(seed_config PRIVATE MTLORA_SOURCE_DIR="${PROJECT_SOURCE_DIR}")
