# fuzz_adapter_config: adapter_config.json's reader and checks
# (src/model/adapter_peft.c, io/json_file.c) on any bytes.
mtlora_add_fuzzer(NAME adapter_config SOURCE fuzz_adapter_config.c SEED seed_adapter_config.c
                  LIBS mtlora_model)
