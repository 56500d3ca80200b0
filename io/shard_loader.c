/* placeholder: being written */
typedef int mt_placeholder_shard_loader;
