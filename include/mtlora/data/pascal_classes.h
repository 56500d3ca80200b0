/* pascal_classes.h - the class tables of PASCAL-Context multi-task that the
 * official loader uses (VOC's 21 semseg classes, their PASCAL-Context ids,
 * the person part map, and the context classes with valid normals). */
#ifndef MTLORA_PASCAL_CLASSES_H
#define MTLORA_PASCAL_CLASSES_H

#include <stdint.h>

#define PASCAL_VOC_CLASSES 21
#define PASCAL_CONTEXT_CLASSES 459 /* context ids run 1..459 */
#define PASCAL_PERSON_CLASS 15     /* VOC index of "person" (anno classIndex) */
#define PASCAL_HUMAN_PARTS 7       /* 6 parts + background */
#define PASCAL_HUMAN_PART_NAMES 24

/* VOC index -> PASCAL-Context id (0 for background). */
extern const int16_t pascal_voc_to_context[PASCAL_VOC_CLASSES];
extern const char *const pascal_voc_names[PASCAL_VOC_CLASSES];

/* 1 if the distilled normals of this context class are kept, else 0. */
int pascal_normals_valid(int context_id);
/* Part id 1..6 of a PASCAL-Part person part name ("luarm"), -1 if unknown. */
int pascal_human_part_id(const char *part_name);
/* The i-th known part name (0..PASCAL_HUMAN_PART_NAMES-1), NULL past the end. */
const char *pascal_human_part_name(int i);

#endif
