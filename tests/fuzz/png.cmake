# PNG decoder (io/image_png.c): img_png_decode on arbitrary bytes.
mtlora_add_fuzzer(NAME png SOURCE fuzz_png.c SEED seed_png.c LIBS mtlora_io MAX_LEN 65536)
