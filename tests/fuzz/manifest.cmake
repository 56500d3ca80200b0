# Shard manifest parser (io/shards/shard_manifest.c): arbitrary bytes.
mtlora_add_fuzzer(NAME manifest SOURCE fuzz_manifest.c SEED seed_manifest.c LIBS mtlora_shards MAX_LEN 16384)
