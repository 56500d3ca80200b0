/* adapter_peft.h - a trained model's adapter as a directory in Hugging Face
 * PEFT's layout (mtlora-export --adapter-out writes it, --adapter reads it
 * back onto a base model):
 *   adapter_model.safetensors    the lora_* tensors
 *   trained_modules.safetensors  PEFT's modules_to_save: every other trained
 *                                tensor and the BatchNorm buffers
 *   config.yaml                  the model's configuration
 *   adapter_config.json          what the adapter is (kinds, ranks, scales,
 *                                target modules, base model), for readers
 *                                that do not parse config.yaml; on load-back
 *                                it must agree with config.yaml
 * The model and the configuration decide what goes where; the files are
 * written with mt_model_save_subset, mt_config_write_yaml and
 * mt_peft_write_config. */
#ifndef MTLORA_ADAPTER_PEFT_H
#define MTLORA_ADAPTER_PEFT_H

#include <stddef.h>
#include "mtlora/config/config.h"
#include "mtlora/model/model.h"
#include "mtlora/base/status.h"

#define MT_PEFT_FORMAT "mtlora-adapter" /* adapter_config.json "format" */
#define MT_PEFT_FORMAT_VERSION 1
#define MT_PEFT_CONFIG_JSON "adapter_config.json"
#define MT_PEFT_CONFIG_YAML "config.yaml"
#define MT_PEFT_ADAPTER_FILE "adapter_model.safetensors"
#define MT_PEFT_MODULES_FILE "trained_modules.safetensors"

/* Selectors for mt_model_save_subset and mt_peft_check_covers: the adapter
 * tensors (lora_*; user unused) and the trained modules (user: the
 * mt_model): trained tensors that are not adapter tensors, and the
 * BatchNorm buffers (running statistics, num_batches_tracked). */
int mt_peft_is_adapter_tensor(void *user, const char *name);
int mt_peft_is_trained_module(void *model, const char *name);

/* How many tensors and values each file of the directory holds. */
typedef struct {
    size_t adapter_tensors, adapter_values;
    size_t module_tensors, module_values;
} mt_peft_counts;
mt_peft_counts mt_peft_count(mt_model *m);

/* Writes adapter_config.json for a finalized config (atomically): the
 * fields that follow from the config, then the file names and counts. */
mt_status mt_peft_write_config(const char *path, const mt_config *cfg, const mt_peft_counts *n,
                               char *err, size_t errlen);

/* Checks the adapter_config.json at path against what cfg (its directory's
 * config.yaml) implies. The file is read strictly (json_file_read: RFC 8259,
 * duplicate keys, NUL, nesting and size refused); a field it does not hold
 * is refused by name; bias must be "none" (the only PEFT value the adapters
 * implement), every lora_dropout rate in [0, 1), lora_alpha = scaling x r
 * per kind and stage; then every field config.yaml decides (format,
 * format_version, peft_type, base_model, tasks, r, target_modules,
 * layer_kinds, lora_alpha, scaling, lora_dropout, bias and the kind
 * sections) must equal what it implies, and modules_to_save_file name
 * trained_modules.safetensors. MT_ERR_FORMAT naming the file and the first
 * field that differs, with both values (and where inside it), or the
 * reason the file cannot be read. */
mt_status mt_peft_check_config(const char *path, const mt_config *cfg, char *err, size_t errlen);

/* The tensor counts of the adapter_config.json at path against the files:
 * adapter_tensors and adapter_values against adapter_file's tensors and
 * their elements, trained_module_tensors and trained_module_values against
 * modules_file's (their headers only are read, with st_load_header's
 * checks). MT_ERR_FORMAT naming the field, its value and the file's. */
mt_status mt_peft_check_counts(const char *path, const char *adapter_file, const char *modules_file,
                               char *err, size_t errlen);

/* Every tensor of m that keep(user, name) selects (and the tasks'
 * num_batches_tracked) must be in the safetensors file at path; otherwise
 * MT_ERR_FORMAT with how many are missing and the first names. `what`
 * names the kind in the message ("adapter (lora_*)"). */
mt_status mt_peft_check_covers(const char *path, mt_model *m, int (*keep)(void *, const char *),
                               void *user, const char *what, char *err, size_t errlen);

#endif
