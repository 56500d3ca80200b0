/* placeholder: being written */
typedef int mt_placeholder_edge_map;
