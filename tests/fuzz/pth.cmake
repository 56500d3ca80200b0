# fuzz_pth: the .pth reader (io/pth/: the restricted unpickler, the zip and
# legacy formats) on any bytes, and pth_write's round trip of what it accepts.
mtlora_add_fuzzer(NAME pth SOURCE fuzz_pth.c SEED seed_pth.c LIBS mtlora_io MAX_LEN 65536)
