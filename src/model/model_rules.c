/* model_rules.c - rules of the model that derive from a configuration:
 * cgc_lora's expert rank and the full fine-tuning baseline of a model
 * (model.h). They live with the model, not the config: the config only
 * reads and checks keys, the model decides what those keys build. */
#include <stdio.h>

#include "mtlora/model/model.h"

int mt_model_cgc_expert_rank(const mt_config *c, int stage) {
    /* all experts of a layer together cost one rank-r LoRA */
    const int re = c->mtlora.r[stage] / (c->adapter.n_shared_experts + c->ntasks * c->adapter.cgc_task);
    return re < 1 ? 1 : re;
}

void mt_model_full_ft_config(mt_config *c) {
    snprintf(c->adapter.kind, sizeof c->adapter.kind, "full_ft");
    for (int k = 0; k < MT_LAYER_KINDS; k++) c->adapter.layer[k][0] = '\0';
    c->mtlora.enabled = 0;
    c->mtlora.downsampler_enabled = 0;
}
