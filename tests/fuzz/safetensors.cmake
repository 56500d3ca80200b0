# fuzz_safetensors: the safetensors reader (io/safetensors.c) on any bytes.
mtlora_add_fuzzer(NAME safetensors SOURCE fuzz_safetensors.c SEED seed_safetensors.c LIBS mtlora_io)
