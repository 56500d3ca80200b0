# Checkpoints (src/train/checkpoint.c): ckpt_load and ckpt_load_latest over
# arbitrary bytes; seeds from ckpt_write and a version-1 file (about 1.4 KB).
mtlora_add_fuzzer(NAME checkpoint SOURCE fuzz_checkpoint.c SEED seed_checkpoint.c LIBS mtlora_train
                  MAX_LEN 16384)
