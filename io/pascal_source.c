/* placeholder: being written */
typedef int mt_placeholder_pascal_source;
