/* pascal_classes.c - class tables of PASCAL-Context multi-task, as the
 * official loader (scale-lab/MTLoRA data/mtl_ds.py) derives them. */
#include "mtlora/data/pascal_classes.h"

#include <string.h>

/* Context ids kept for the distilled normals: every NYU class name that is
 * also a PASCAL-Context class name (except "unknown"), plus "tvmonitor",
 * from the official db_info/nyu_classes.json and context_classes.json
 * (170 ids). */
static const int16_t normals_valid_ids[] = {
    3, 4, 6, 9, 10, 11, 13, 15, 17, 18, 22, 23, 29, 30,
    33, 34, 36, 37, 38, 39, 41, 43, 46, 49, 50, 51, 53, 55,
    56, 59, 61, 62, 65, 66, 68, 69, 72, 73, 78, 83, 84, 85,
    87, 88, 95, 96, 101, 104, 105, 107, 111, 113, 115, 122, 124, 135,
    141, 142, 143, 146, 150, 154, 157, 158, 159, 165, 172, 174, 181, 183,
    184, 191, 193, 195, 197, 199, 202, 213, 215, 216, 219, 220, 223, 225,
    228, 230, 232, 233, 238, 239, 242, 243, 246, 250, 251, 252, 255, 260,
    261, 263, 269, 272, 273, 275, 281, 283, 284, 285, 286, 287, 288, 290,
    291, 292, 293, 295, 304, 307, 309, 310, 314, 315, 319, 323, 329, 330,
    331, 336, 342, 345, 349, 350, 351, 352, 355, 357, 368, 370, 371, 374,
    379, 380, 383, 384, 397, 401, 403, 405, 407, 408, 411, 412, 413, 414,
    417, 419, 421, 423, 427, 429, 430, 432, 440, 441, 442, 443, 444, 446,
    454, 457,
};

const int16_t pascal_voc_to_context[PASCAL_VOC_CLASSES] = {
    0, 2, 23, 25, 31, 34, 45, 59, 65, 72, 98, 397, 113, 207, 258, 284, 308, 347, 368, 416, 427,
};

const char *const pascal_voc_names[PASCAL_VOC_CLASSES] = {
    "background", "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat",
    "chair", "cow", "diningtable", "dog", "horse", "motorbike", "person", "pottedplant",
    "sheep", "sofa", "train", "tvmonitor",
};

/* The official HUMAN_PART[6] map (it replaces pascal_part.json's entry for
 * class 15 when num_human_parts = 6): 1 head, 2 torso, 3 upper arms,
 * 4 lower arms and hands, 5 upper legs, 6 lower legs and feet. */
static const struct { const char *name; uint8_t id; } human_part6[] = {
    {"hair", 1}, {"head", 1}, {"lear", 1}, {"lebrow", 1}, {"leye", 1}, {"lfoot", 6},
    {"lhand", 4}, {"llarm", 4}, {"llleg", 6}, {"luarm", 3}, {"luleg", 5}, {"mouth", 1},
    {"neck", 2}, {"nose", 1}, {"rear", 1}, {"rebrow", 1}, {"reye", 1}, {"rfoot", 6},
    {"rhand", 4}, {"rlarm", 4}, {"rlleg", 6}, {"ruarm", 3}, {"ruleg", 5}, {"torso", 2},
};

int pascal_normals_valid(int context_id) {
    int lo = 0, hi = (int)(sizeof normals_valid_ids / sizeof normals_valid_ids[0]) - 1;
    while (lo <= hi) {
        int mid = (lo + hi) / 2;
        if (normals_valid_ids[mid] == context_id) return 1;
        if (normals_valid_ids[mid] < context_id) lo = mid + 1; else hi = mid - 1;
    }
    return 0;
}

int pascal_human_part_id(const char *part_name) {
    for (size_t i = 0; i < sizeof human_part6 / sizeof human_part6[0]; i++)
        if (strcmp(human_part6[i].name, part_name) == 0) return human_part6[i].id;
    return -1;
}

const char *pascal_human_part_name(int i) {
    if (i < 0 || i >= (int)(sizeof human_part6 / sizeof human_part6[0])) return NULL;
    return human_part6[i].name;
}
