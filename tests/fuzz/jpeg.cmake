# JPEG decoder (io/image_jpeg.c): img_jpeg_decode on arbitrary bytes.
mtlora_add_fuzzer(NAME jpeg SOURCE fuzz_jpeg.c SEED seed_jpeg.c LIBS mtlora_io MAX_LEN 65536)
