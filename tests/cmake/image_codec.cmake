# tests for image_codec (being written)
