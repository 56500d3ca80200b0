# tests for edge_map (being written)
