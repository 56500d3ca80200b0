# tests for data_pipeline (being written)
