# tests for synthetic (being written)
