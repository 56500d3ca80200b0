/* label_colors.h - colours for looking at predictions: the PASCAL VOC colour
 * map for class labels, the official colouring of surface normals, gray to
 * RGB. Pure functions, no allocation (src/data/label_colors.c).
 *
 * The VOC colour map is the bit-interleaving palette of VOCdevkit's
 * labelcolormap.m (what PASCAL/VOC tools and the SegmentationClass PNGs
 * use): bit 3j of the label goes to bit 7-j of red, bit 3j+1 to green, bit
 * 3j+2 to blue. Class 1 is (128, 0, 0), 15 (person) (192, 128, 128), 255
 * (VOC's "void") (224, 224, 192). The same map serves the 21 semseg classes
 * of PASCAL-Context multi-task and the 7 human-part labels. */
#ifndef MTLORA_LABEL_COLORS_H
#define MTLORA_LABEL_COLORS_H

#include <stddef.h>
#include <stdint.h>

/* The VOC colour of label (0..255). */
void label_voc_color(uint8_t label, uint8_t rgb[3]);

/* n labels to n RGB triples (rgb holds 3 n bytes). */
void label_colorize(const uint8_t *labels, size_t n, uint8_t *rgb);

/* One surface normal as the official code colours it (get_output in
 * evaluation/evaluate_utils.py, then the saved PNG's astype(np.uint8)):
 * v = (n / max(|n|, 1e-12) + 1) * 255 / 2 in float32, truncated toward
 * zero. (0, 0, 1) gives (127, 127, 255); a zero vector (127, 127, 127). */
void label_normal_color(float x, float y, float z, uint8_t rgb[3]);

/* The float value before truncation (0..255) of one component, for the
 * resampling that comes before the truncation (prediction_maps.h). */
void label_normal_values(float x, float y, float z, float v[3]);

/* n gray values to n RGB triples (r = g = b). */
void label_gray_to_rgb(const uint8_t *gray, size_t n, uint8_t *rgb);

#endif
