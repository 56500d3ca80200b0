/* scene_classes.c - how the synthetic scene draws each of the 19 VOC object
 * classes other than the person (scene_person.c): a silhouette in region
 * codes over the object's box, and the table of proportions, colours and
 * textures (scene_internal.h). */
#include "scene_internal.h"

#include <stddef.h>

#include "mtlora/data/pascal_classes.h"

static void shape_aeroplane(canvas *c) {
    paint_ellipse(c, 0.5, 0.55, 0.48, 0.13, R_BODY);
    paint_triangle(c, 0.35, 0.55, 0.62, 0.55, 0.45, 0.98, R_BODY);
    paint_triangle(c, 0.40, 0.50, 0.56, 0.50, 0.50, 0.22, R_BODY);
    paint_triangle(c, 0.03, 0.52, 0.18, 0.52, 0.05, 0.10, R_DETAIL);
    paint_ellipse(c, 0.88, 0.50, 0.05, 0.06, R_ACCENT);
}

static void shape_bicycle(canvas *c) {
    paint_ring(c, 0.22, 0.70, 0.28, 0.22, R_ACCENT);
    paint_ring(c, 0.78, 0.70, 0.28, 0.22, R_ACCENT);
    const double bars[][4] = {{0.22, 0.70, 0.45, 0.40}, {0.45, 0.40, 0.75, 0.40},
                              {0.45, 0.40, 0.50, 0.72}, {0.50, 0.72, 0.22, 0.70},
                              {0.75, 0.40, 0.78, 0.70}, {0.45, 0.40, 0.42, 0.22},
                              {0.75, 0.40, 0.72, 0.18}, {0.50, 0.72, 0.75, 0.40}};
    for (size_t i = 0; i < sizeof bars / sizeof bars[0]; i++)
        paint_capsule(c, bars[i][0], bars[i][1], bars[i][2], bars[i][3], 0.025, R_BODY);
    paint_capsule(c, 0.36, 0.21, 0.48, 0.21, 0.035, R_ACCENT);
    paint_capsule(c, 0.66, 0.18, 0.80, 0.17, 0.022, R_DETAIL);
}

static void shape_bird(canvas *c) {
    paint_triangle(c, 0.22, 0.50, 0.00, 0.38, 0.02, 0.68, R_BODY);
    paint_ellipse(c, 0.45, 0.55, 0.30, 0.22, R_BODY);
    paint_disc(c, 0.76, 0.34, 0.16, R_BODY);
    paint_triangle(c, 0.86, 0.29, 1.00, 0.37, 0.86, 0.43, R_DETAIL);
    paint_ellipse(c, 0.40, 0.50, 0.22, 0.10, R_ACCENT);
    paint_capsule(c, 0.42, 0.74, 0.42, 0.98, 0.02, R_DETAIL);
    paint_capsule(c, 0.52, 0.74, 0.54, 0.98, 0.02, R_DETAIL);
}

static void shape_boat(canvas *c) {
    const double hull[8] = {0.0, 0.62, 1.0, 0.62, 0.86, 0.96, 0.12, 0.96};
    paint_quad(c, hull, R_BODY);
    paint_capsule(c, 0.50, 0.04, 0.50, 0.62, 0.015, R_ACCENT);
    paint_triangle(c, 0.53, 0.08, 0.53, 0.58, 0.90, 0.58, R_DETAIL);
    paint_triangle(c, 0.47, 0.16, 0.47, 0.58, 0.20, 0.58, R_DETAIL);
}

static void shape_bottle(canvas *c) {
    paint_rect(c, 0.10, 0.36, 0.90, 1.00, R_BODY);
    paint_ellipse(c, 0.50, 0.36, 0.40, 0.10, R_BODY);
    paint_rect(c, 0.34, 0.08, 0.66, 0.36, R_BODY);
    paint_rect(c, 0.32, 0.00, 0.68, 0.09, R_ACCENT);
    paint_rect(c, 0.10, 0.56, 0.90, 0.80, R_DETAIL);
}

static void shape_bus(canvas *c) {
    paint_rect(c, 0.00, 0.04, 1.00, 0.86, R_BODY);
    for (int i = 0; i < 5; i++) paint_rect(c, 0.04 + 0.19 * i, 0.14, 0.18 + 0.19 * i, 0.44, R_DETAIL);
    paint_disc(c, 0.20, 0.86, 0.13, R_ACCENT);
    paint_disc(c, 0.80, 0.86, 0.13, R_ACCENT);
}

static void shape_car(canvas *c) {
    const double cabin[8] = {0.20, 0.42, 0.80, 0.42, 0.66, 0.06, 0.32, 0.06};
    const double glass[8] = {0.27, 0.40, 0.73, 0.40, 0.63, 0.12, 0.35, 0.12};
    paint_quad(c, cabin, R_BODY);
    paint_quad(c, glass, R_DETAIL);
    paint_rect(c, 0.00, 0.40, 1.00, 0.82, R_BODY);
    paint_disc(c, 0.22, 0.80, 0.18, R_ACCENT);
    paint_disc(c, 0.78, 0.80, 0.18, R_ACCENT);
}

static void shape_cat(canvas *c) {
    paint_capsule(c, 0.14, 0.55, 0.03, 0.12, 0.05, R_BODY);
    paint_ellipse(c, 0.45, 0.60, 0.33, 0.25, R_BODY);
    paint_capsule(c, 0.30, 0.75, 0.30, 0.96, 0.06, R_BODY);
    paint_capsule(c, 0.62, 0.75, 0.62, 0.96, 0.06, R_BODY);
    paint_disc(c, 0.80, 0.36, 0.20, R_BODY);
    paint_triangle(c, 0.66, 0.28, 0.72, 0.02, 0.80, 0.20, R_BODY);
    paint_triangle(c, 0.82, 0.20, 0.90, 0.02, 0.95, 0.28, R_BODY);
    paint_ellipse(c, 0.76, 0.32, 0.03, 0.04, R_DETAIL);
    paint_ellipse(c, 0.87, 0.32, 0.03, 0.04, R_DETAIL);
}

static void shape_chair(canvas *c) {
    paint_rect(c, 0.10, 0.00, 0.90, 0.48, R_BODY);
    paint_rect(c, 0.22, 0.10, 0.78, 0.38, 0); /* open backrest */
    paint_rect(c, 0.04, 0.48, 0.96, 0.60, R_BODY);
    paint_rect(c, 0.08, 0.60, 0.17, 1.00, R_ACCENT);
    paint_rect(c, 0.83, 0.60, 0.92, 1.00, R_ACCENT);
    paint_rect(c, 0.30, 0.60, 0.37, 0.90, R_ACCENT);
    paint_rect(c, 0.63, 0.60, 0.70, 0.90, R_ACCENT);
}

static void shape_cow(canvas *c) {
    const double legs[4] = {0.20, 0.32, 0.62, 0.72};
    for (int i = 0; i < 4; i++) paint_capsule(c, legs[i], 0.55, legs[i], 0.97, 0.045, R_BODY);
    paint_ellipse(c, 0.45, 0.45, 0.38, 0.25, R_BODY);
    paint_rect(c, 0.14, 0.28, 0.76, 0.62, R_BODY);
    paint_capsule(c, 0.08, 0.32, 0.03, 0.65, 0.02, R_ACCENT);
    paint_ellipse(c, 0.88, 0.36, 0.10, 0.16, R_BODY);
    paint_triangle(c, 0.82, 0.22, 0.84, 0.08, 0.87, 0.22, R_DETAIL);
    paint_triangle(c, 0.90, 0.22, 0.94, 0.08, 0.95, 0.22, R_DETAIL);
    paint_ellipse(c, 0.92, 0.48, 0.06, 0.06, R_ACCENT);
}

static void shape_diningtable(canvas *c) {
    const double top[8] = {0.10, 0.00, 0.90, 0.00, 1.00, 0.22, 0.00, 0.22};
    paint_quad(c, top, R_DETAIL);
    paint_rect(c, 0.00, 0.22, 1.00, 0.32, R_BODY);
    paint_rect(c, 0.05, 0.32, 0.95, 0.40, R_BODY);
    paint_rect(c, 0.06, 0.32, 0.13, 1.00, R_ACCENT);
    paint_rect(c, 0.87, 0.32, 0.94, 1.00, R_ACCENT);
    paint_rect(c, 0.22, 0.32, 0.27, 0.86, R_ACCENT);
    paint_rect(c, 0.73, 0.32, 0.78, 0.86, R_ACCENT);
}

static void shape_dog(canvas *c) {
    const double legs[4] = {0.24, 0.34, 0.58, 0.68};
    paint_capsule(c, 0.16, 0.45, 0.05, 0.22, 0.03, R_BODY);
    for (int i = 0; i < 4; i++) paint_capsule(c, legs[i], 0.55, legs[i], 0.97, 0.05, R_BODY);
    paint_ellipse(c, 0.45, 0.50, 0.32, 0.20, R_BODY);
    paint_disc(c, 0.80, 0.30, 0.15, R_BODY);
    paint_ellipse(c, 0.94, 0.36, 0.07, 0.07, R_BODY);
    paint_ellipse(c, 0.74, 0.36, 0.05, 0.13, R_ACCENT);
    paint_disc(c, 0.99, 0.33, 0.03, R_DETAIL);
}

static void shape_horse(canvas *c) {
    const double legs[4] = {0.22, 0.32, 0.60, 0.70};
    paint_capsule(c, 0.16, 0.36, 0.06, 0.72, 0.035, R_ACCENT);
    for (int i = 0; i < 4; i++) paint_capsule(c, legs[i], 0.50, legs[i] - 0.02, 0.98, 0.035, R_BODY);
    paint_ellipse(c, 0.45, 0.44, 0.32, 0.17, R_BODY);
    paint_capsule(c, 0.70, 0.40, 0.80, 0.14, 0.08, R_BODY);
    paint_capsule(c, 0.66, 0.30, 0.76, 0.06, 0.03, R_ACCENT);
    paint_capsule(c, 0.80, 0.12, 0.96, 0.26, 0.06, R_BODY);
}

static void shape_motorbike(canvas *c) {
    paint_disc(c, 0.20, 0.72, 0.26, R_ACCENT);
    paint_disc(c, 0.80, 0.72, 0.26, R_ACCENT);
    paint_disc(c, 0.20, 0.72, 0.09, R_DETAIL);
    paint_disc(c, 0.80, 0.72, 0.09, R_DETAIL);
    paint_capsule(c, 0.80, 0.72, 0.70, 0.22, 0.03, R_DETAIL);
    paint_rect(c, 0.38, 0.52, 0.62, 0.72, R_DETAIL);
    paint_ellipse(c, 0.52, 0.45, 0.22, 0.14, R_BODY);
    paint_capsule(c, 0.26, 0.40, 0.48, 0.38, 0.05, R_ACCENT);
    paint_capsule(c, 0.64, 0.20, 0.78, 0.18, 0.025, R_DETAIL);
}

static void shape_pottedplant(canvas *c) {
    paint_capsule(c, 0.50, 0.70, 0.50, 0.30, 0.03, R_BODY);
    paint_disc(c, 0.50, 0.34, 0.22, R_BODY);
    paint_disc(c, 0.28, 0.46, 0.16, R_BODY);
    paint_disc(c, 0.72, 0.44, 0.16, R_BODY);
    paint_disc(c, 0.48, 0.14, 0.13, R_BODY);
    const double pot[8] = {0.20, 0.64, 0.80, 0.64, 0.70, 1.00, 0.30, 1.00};
    paint_quad(c, pot, R_ACCENT);
    paint_rect(c, 0.17, 0.62, 0.83, 0.68, R_DETAIL);
}

static void shape_sheep(canvas *c) {
    const double legs[4] = {0.25, 0.35, 0.60, 0.70};
    for (int i = 0; i < 4; i++) paint_capsule(c, legs[i], 0.60, legs[i], 0.97, 0.03, R_ACCENT);
    paint_ellipse(c, 0.45, 0.45, 0.34, 0.22, R_BODY);
    for (int i = 0; i < 6; i++) {
        double u = 0.18 + 0.11 * i;
        paint_disc(c, u, 0.30 + 0.04 * (i % 2), 0.12, R_BODY);
        paint_disc(c, u, 0.60 - 0.04 * (i % 2), 0.12, R_BODY);
    }
    paint_ellipse(c, 0.87, 0.40, 0.08, 0.13, R_ACCENT);
    paint_ellipse(c, 0.82, 0.30, 0.05, 0.04, R_ACCENT);
}

static void shape_sofa(canvas *c) {
    paint_rect(c, 0.06, 0.08, 0.94, 0.56, R_BODY);
    paint_rect(c, 0.06, 0.52, 0.94, 0.82, R_BODY);
    paint_rect(c, 0.495, 0.54, 0.505, 0.80, R_DETAIL); /* seam between the cushions */
    paint_rect(c, 0.00, 0.30, 0.12, 0.86, R_ACCENT);
    paint_rect(c, 0.88, 0.30, 1.00, 0.86, R_ACCENT);
    paint_rect(c, 0.06, 0.86, 0.11, 1.00, R_DETAIL);
    paint_rect(c, 0.89, 0.86, 0.94, 1.00, R_DETAIL);
}

static void shape_train(canvas *c) {
    paint_rect(c, 0.00, 0.08, 0.94, 0.86, R_BODY);
    paint_ellipse(c, 0.94, 0.47, 0.06, 0.39, R_BODY);
    for (int i = 0; i < 6; i++) paint_rect(c, 0.03 + 0.15 * i, 0.18, 0.13 + 0.15 * i, 0.42, R_DETAIL);
    paint_rect(c, 0.00, 0.58, 1.00, 0.66, R_ACCENT);
    for (int i = 0; i < 6; i++) paint_disc(c, 0.08 + 0.16 * i, 0.90, 0.09, R_ACCENT);
}

static void shape_tvmonitor(canvas *c) {
    paint_rect(c, 0.00, 0.00, 1.00, 0.80, R_ACCENT);
    paint_rect(c, 0.06, 0.06, 0.94, 0.73, R_BODY);
    paint_rect(c, 0.45, 0.80, 0.55, 0.91, R_ACCENT);
    paint_rect(c, 0.28, 0.91, 0.72, 1.00, R_DETAIL);
}

static const class_look CLASS_LOOKS[PASCAL_VOC_CLASSES] = {
    [VOC_AEROPLANE] = {shape_aeroplane, 2.2, 1.3, TEX_METAL, 1,
                       {{225, 225, 230}, {200, 205, 215}, {235, 235, 235}, {190, 195, 200}},
                       {40, 50, 70}, {180, 30, 40}},
    [VOC_BICYCLE] = {shape_bicycle, 1.5, 0.6, TEX_PLAIN, 0,
                     {{200, 30, 30}, {30, 60, 170}, {30, 30, 30}, {40, 140, 60}},
                     {25, 25, 25}, {170, 170, 175}},
    [VOC_BIRD] = {shape_bird, 1.2, 0.3, TEX_WOOL, 1,
                  {{120, 90, 60}, {90, 90, 95}, {60, 90, 160}, {200, 180, 60}},
                  {60, 45, 35}, {230, 140, 30}},
    [VOC_BOAT] = {shape_boat, 1.3, 0.9, TEX_PLAIN, 0,
                  {{230, 230, 230}, {170, 40, 40}, {40, 60, 130}, {200, 170, 60}},
                  {50, 40, 30}, {240, 240, 235}},
    [VOC_BOTTLE] = {shape_bottle, 0.35, 0.35, TEX_METAL, 0,
                    {{40, 110, 60}, {110, 60, 20}, {170, 200, 190}, {60, 90, 150}},
                    {200, 180, 40}, {230, 220, 200}},
    [VOC_BUS] = {shape_bus, 1.8, 1.5, TEX_METAL, 0,
                 {{230, 190, 30}, {190, 30, 30}, {225, 225, 225}, {40, 90, 170}},
                 {20, 20, 20}, {60, 80, 100}},
    [VOC_CAR] = {shape_car, 2.0, 0.75, TEX_METAL, 0,
                 {{190, 25, 25}, {35, 70, 160}, {180, 180, 185}, {30, 30, 35}},
                 {20, 20, 20}, {55, 65, 80}},
    [VOC_CAT] = {shape_cat, 1.2, 0.35, TEX_STRIPES, 0,
                 {{210, 130, 50}, {120, 120, 120}, {45, 40, 40}, {225, 220, 210}},
                 {60, 40, 30}, {120, 180, 60}},
    [VOC_CHAIR] = {shape_chair, 0.7, 0.55, TEX_WOOD, 0,
                   {{130, 85, 45}, {45, 45, 45}, {215, 215, 210}, {150, 40, 40}},
                   {90, 60, 30}, {200, 200, 200}},
    [VOC_COW] = {shape_cow, 1.5, 0.85, TEX_SPOTS, 0,
                 {{235, 235, 230}, {120, 70, 40}, {200, 190, 170}, {150, 100, 60}},
                 {30, 25, 25}, {220, 210, 180}},
    [VOC_DININGTABLE] = {shape_diningtable, 1.8, 0.5, TEX_WOOD, 0,
                         {{140, 95, 55}, {100, 65, 35}, {180, 140, 90}, {220, 215, 205}},
                         {80, 50, 25}, {200, 160, 110}},
    [VOC_DOG] = {shape_dog, 1.3, 0.45, TEX_PLAIN, 0,
                 {{190, 150, 100}, {110, 70, 40}, {35, 30, 30}, {225, 220, 210}},
                 {70, 45, 25}, {30, 20, 20}},
    [VOC_HORSE] = {shape_horse, 1.3, 1.1, TEX_PLAIN, 0,
                   {{120, 70, 35}, {150, 80, 40}, {40, 30, 25}, {200, 195, 190}},
                   {30, 20, 15}, {230, 225, 215}},
    [VOC_MOTORBIKE] = {shape_motorbike, 1.5, 0.7, TEX_METAL, 0,
                       {{190, 30, 30}, {30, 30, 30}, {40, 80, 170}, {230, 140, 20}},
                       {20, 20, 20}, {180, 180, 190}},
    [VOC_PERSON] = {NULL, 0.9, 1.0, TEX_PLAIN, 0, {{0}}, {0}, {0}},
    [VOC_POTTEDPLANT] = {shape_pottedplant, 0.7, 0.45, TEX_FOLIAGE, 0,
                         {{50, 120, 40}, {70, 140, 50}, {40, 100, 60}, {90, 130, 40}},
                         {170, 90, 50}, {120, 70, 40}},
    [VOC_SHEEP] = {shape_sheep, 1.4, 0.55, TEX_WOOL, 0,
                   {{225, 220, 205}, {210, 205, 190}, {235, 230, 220}, {190, 180, 165}},
                   {30, 30, 30}, {40, 35, 30}},
    [VOC_SOFA] = {shape_sofa, 2.0, 0.6, TEX_FABRIC, 0,
                  {{150, 40, 40}, {200, 180, 150}, {110, 110, 115}, {50, 70, 120}},
                  {90, 70, 60}, {60, 40, 30}},
    [VOC_TRAIN] = {shape_train, 2.5, 1.6, TEX_METAL, 0,
                   {{200, 40, 40}, {40, 80, 160}, {210, 210, 210}, {40, 120, 60}},
                   {30, 30, 30}, {60, 80, 100}},
    [VOC_TVMONITOR] = {shape_tvmonitor, 1.2, 0.4, TEX_SCREEN, 0,
                       {{90, 140, 200}, {60, 170, 120}, {200, 120, 80}, {150, 150, 210}},
                       {25, 25, 28}, {60, 60, 60}},
};

const class_look *class_look_of(int voc) { return &CLASS_LOOKS[voc]; }
