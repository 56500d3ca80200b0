/* scene_background.c - the background of a synthetic scene: indoors a wall
 * over a floor (maybe a ceiling, doors, windows, curtains, cabinets),
 * outdoors sky over grass, ground, road or water (maybe a skyline, a
 * building, a garden wall); its regions, their context classes, their
 * slopes (the normals) and their colours (scene_internal.h). */
#include "scene_internal.h"

#include <math.h>
#include <stddef.h>
#include <string.h>

typedef struct {
    int ctx;
    uint8_t rgb[3];
} ctx_colour;

static const ctx_colour BG_COLOURS[] = {
    {CTX_WALL, {215, 205, 185}}, {CTX_FLOOR, {150, 105, 65}}, {CTX_CEILING, {235, 235, 228}},
    {CTX_DOOR, {120, 80, 45}},   {CTX_WINDOW, {170, 200, 230}}, {CTX_CURTAIN, {150, 45, 55}},
    {CTX_CABINET, {110, 75, 40}}, {CTX_SKY, {120, 170, 225}},  {CTX_GRASS, {70, 130, 40}},
    {CTX_GROUND, {140, 110, 80}}, {CTX_ROAD, {90, 90, 95}},     {CTX_TREE, {40, 85, 35}},
    {CTX_MOUNTAIN, {110, 115, 135}}, {CTX_WATER, {50, 90, 140}}, {CTX_BUILDING, {160, 150, 140}},
};

static void bg_colour(draws *d, int ctx, float out[3]) {
    for (size_t i = 0; i < sizeof BG_COLOURS / sizeof BG_COLOURS[0]; i++)
        if (BG_COLOURS[i].ctx == ctx) {
            jitter_colour(d, BG_COLOURS[i].rgb, 25, out);
            return;
        }
    out[0] = out[1] = out[2] = 128;
}

static double horizon_at(const background *bg, double x) { return bg->hy + bg->hslope * (x - bg->w / 2.0); }

static void bg_add_feature(background *bg, draws *d, int ctx, double x0, double y0, double x1, double y1) {
    if (bg->nfeat >= 3) return;
    bg_feature *f = &bg->feat[bg->nfeat++];
    f->ctx = ctx;
    f->x0 = x0, f->y0 = y0, f->x1 = x1, f->y1 = y1;
    bg_colour(d, ctx, f->colour);
}

/* Indoors: wall over floor, maybe a ceiling, doors/windows/curtains/
 * cabinets on the wall (all classes with valid normals). */
static void bg_draw_indoor(background *bg, draws *d) {
    int w = bg->w, h = bg->h;
    bg->upper = CTX_WALL;
    bg->lower = CTX_FLOOR;
    bg->ceiling = draw_chance(d, 0.45);
    bg->cy = bg->hy * draw_between(d, 0.15, 0.3);
    bg->floor_tiles = draw_chance(d, 0.5);
    int n = draw_int(d, 0, 2);
    for (int i = 0; i < n; i++) {
        double x0 = draw_between(d, -0.05, 0.8) * w, fw = draw_between(d, 0.12, 0.25) * w;
        double floor_y = horizon_at(bg, x0 + fw / 2);
        switch (draw_int(d, 0, 3)) {
        case 0: bg_add_feature(bg, d, CTX_DOOR, x0, floor_y - 0.45 * h, x0 + fw, floor_y); break;
        case 1: bg_add_feature(bg, d, CTX_WINDOW, x0, bg->cy + 0.08 * h, x0 + fw, floor_y - 0.12 * h); break;
        case 2: bg_add_feature(bg, d, CTX_CURTAIN, x0, bg->cy, x0 + fw, floor_y - 0.02 * h); break;
        default: bg_add_feature(bg, d, CTX_CABINET, x0, floor_y - 0.25 * h, x0 + fw, floor_y + 0.05 * h); break;
        }
    }
}

/* Outdoors: sky over grass/ground/road (water under boats), maybe
 * mountains or trees on the horizon, a building or a garden wall. */
static void bg_draw_outdoor(background *bg, draws *d, int has_boat) {
    int w = bg->w, h = bg->h;
    static const int grounds[] = {CTX_GRASS, CTX_GROUND, CTX_ROAD};
    bg->upper = CTX_SKY;
    bg->lower = has_boat ? CTX_WATER : grounds[draw_int(d, 0, 2)];
    if (draw_chance(d, 0.6)) {
        bg->skyline = draw_chance(d, 0.5) ? CTX_MOUNTAIN : CTX_TREE;
        bg->amp = draw_between(d, 0.05, 0.2) * h;
        bg->freq = draw_between(d, 2.0, 7.0) * 2 * SCENE_PI / w;
        bg->phase = draw_between(d, 0, 2 * SCENE_PI);
        bg_colour(d, bg->skyline, bg->skyline_rgb);
    }
    if (draw_chance(d, 0.4)) {
        double x0 = draw_between(d, -0.1, 0.7) * w, fw = draw_between(d, 0.15, 0.35) * w;
        double base = horizon_at(bg, x0 + fw / 2);
        bg_add_feature(bg, d, CTX_BUILDING, x0, base - draw_between(d, 0.2, 0.45) * h, x0 + fw, base + 0.01 * h);
    }
    if (draw_chance(d, 0.5)) { /* a garden wall: valid normals outdoors too */
        double x0 = draw_between(d, -0.2, 0.6) * w, fw = draw_between(d, 0.3, 0.6) * w;
        double base = horizon_at(bg, x0 + fw / 2) + 0.04 * h;
        bg_add_feature(bg, d, CTX_WALL, x0, base - draw_between(d, 0.08, 0.16) * h, x0 + fw, base);
    }
}

void bg_draw(background *bg, draws *d, int w, int h, int indoor, int has_boat) {
    memset(bg, 0, sizeof *bg);
    bg->w = w, bg->h = h, bg->indoor = indoor;
    bg->hy = draw_between(d, indoor ? 0.45 : 0.3, indoor ? 0.7 : 0.6) * h;
    bg->hslope = draw_between(d, -0.08, 0.08);
    bg->wall_gx = (float)draw_between(d, -0.4, 0.4);
    bg->wall_gy = (float)draw_between(d, -0.15, 0.15);
    bg->floor_gx = (float)draw_between(d, -0.3, 0.3);
    bg->floor_gy = (float)draw_between(d, 1.5, 3.5);
    bg->curtain_period = draw_between(d, 0.03, 0.06) * w + 4;
    if (indoor) bg_draw_indoor(bg, d);
    else bg_draw_outdoor(bg, d, has_boat);
    bg_colour(d, bg->upper, bg->upper_rgb);
    bg_colour(d, bg->lower, bg->lower_rgb);
    bg_colour(d, CTX_CEILING, bg->ceiling_rgb);
}

/* Region of a background pixel: BG_FEATURE + i for feature i. */
int bg_region(const background *bg, int x, int y) {
    double px = x + 0.5, py = y + 0.5;
    for (int i = bg->nfeat - 1; i >= 0; i--) {
        const bg_feature *f = &bg->feat[i];
        if (px >= f->x0 && px < f->x1 && py >= f->y0 && py < f->y1) return BG_FEATURE + i;
    }
    double hor = horizon_at(bg, px);
    if (py >= hor) return BG_LOWER;
    if (bg->ceiling && py < bg->cy + bg->hslope * (px - bg->w / 2.0)) return BG_CEILING;
    if (bg->skyline && py >= hor - bg->amp * (0.55 + 0.45 * sin(bg->freq * px + bg->phase))) return BG_SKYLINE;
    return BG_UPPER;
}

int bg_region_ctx(const background *bg, int region) {
    switch (region) {
    case BG_LOWER: return bg->lower;
    case BG_UPPER: return bg->upper;
    case BG_CEILING: return CTX_CEILING;
    case BG_SKYLINE: return bg->skyline;
    default: return bg->feat[region - BG_FEATURE].ctx;
    }
}

/* Slope of the background's height field: vertical planes nearly face the
 * camera, the ground recedes upwards, the ceiling downwards; curtains fold. */
void bg_slope(const background *bg, int region, int x, float *gx, float *gy) {
    int ctx = bg_region_ctx(bg, region);
    if (region == BG_LOWER) {
        *gx = bg->floor_gx, *gy = bg->floor_gy;
    } else if (region == BG_CEILING) {
        *gx = bg->floor_gx, *gy = -bg->floor_gy;
    } else {
        *gx = bg->wall_gx, *gy = bg->wall_gy;
        if (ctx == CTX_CURTAIN) *gx += (float)(0.8 * sin(2 * SCENE_PI * x / bg->curtain_period));
    }
}

void bg_albedo(const background *bg, int region, int x, int y, uint64_t seed, float out[3]) {
    const float *base = region == BG_LOWER ? bg->lower_rgb : region == BG_UPPER ? bg->upper_rgb
                      : region == BG_CEILING ? bg->ceiling_rgb : region == BG_SKYLINE ? bg->skyline_rgb
                      : bg->feat[region - BG_FEATURE].colour;
    int ctx = bg_region_ctx(bg, region);
    double f = 1.0, hor = horizon_at(bg, x + 0.5), below = y + 0.5 - hor;
    for (int i = 0; i < 3; i++) out[i] = base[i];
    switch (ctx) {
    case CTX_SKY: {
        double t = clampd((y + 0.5) / fmax(hor, 1.0), 0, 1); /* paler towards the horizon */
        double cloud = clampd((value_noise(seed, x, y * 2.5, bg->w / 6.0 + 1) - 0.55) * 3, 0, 1);
        for (int i = 0; i < 3; i++) {
            double c = base[i] + (235 - base[i]) * 0.6 * t;
            out[i] = (float)(c + (245 - c) * cloud);
        }
        return;
    }
    case CTX_FLOOR: {
        double depth = fmax(below, 2.0);
        int plank = (int)floor((x + 0.5 - bg->w / 2.0) / depth * 3.0);
        int row = bg->floor_tiles ? (int)floor(6.0 * log(depth)) : 0;
        f = ((plank + row) & 1 ? 0.82 : 1.0) * (0.92 + 0.16 * value_noise(seed, x, y, 6.0));
        break;
    }
    case CTX_GRASS: f = (0.6 + 0.7 * value_noise(seed, x, y, 2.5)) * (0.85 + 0.3 * value_noise(seed ^ 1, x, y, 25.0)); break;
    case CTX_GROUND: f = 0.75 + 0.5 * value_noise(seed, x, y, 5.0); break;
    case CTX_ROAD:
        f = 0.9 + 0.2 * value_noise(seed, x, y, 2.0);
        if (fabs(x + 0.5 - bg->w / 2.0) < 0.03 * below && ((int)floor(4.0 * log(fmax(below, 1.0))) & 1)) {
            out[0] = out[1] = out[2] = 225; /* dashed centre line */
            return;
        }
        break;
    case CTX_WATER: f = 0.8 + 0.3 * (0.5 + 0.5 * sin(0.6 * y + 6 * value_noise(seed, x, y, 12.0))); break;
    case CTX_TREE: f = 0.55 + 0.9 * value_noise(seed, x, y, 4.0); break;
    case CTX_MOUNTAIN: f = 0.8 + 0.4 * value_noise(seed, x, y, 15.0); break;
    case CTX_CEILING: f = 0.97 + 0.06 * value_noise(seed, x, y, 20.0); break;
    case CTX_WALL: f = 0.94 + 0.1 * value_noise(seed, x, y, 30.0); break;
    default: {
        const bg_feature *ft = &bg->feat[region - BG_FEATURE];
        double lu = (x + 0.5 - ft->x0) / (ft->x1 - ft->x0), lv = (y + 0.5 - ft->y0) / (ft->y1 - ft->y0);
        int border = lu < 0.08 || lu > 0.92 || lv < 0.06 || lv > 0.94;
        if (ctx == CTX_WINDOW && (border || fabs(lu - 0.5) < 0.03 || fabs(lv - 0.5) < 0.03)) {
            out[0] = out[1] = out[2] = 235; /* white frame and cross bars */
            return;
        }
        if (ctx == CTX_WINDOW) f = 0.8 + 0.3 * lv;
        if (ctx == CTX_DOOR || ctx == CTX_CABINET) f = border ? 0.75 : 0.95 + 0.1 * value_noise(seed, x, y, 7.0);
        if (ctx == CTX_BUILDING)
            f = (fmod(x - ft->x0, 18.0) < 9.0 && fmod(y - ft->y0, 22.0) < 11.0) ? 0.45 : 1.0;
        break;
    }
    }
    for (int i = 0; i < 3; i++) out[i] = (float)(base[i] * f);
}
