/* scene_person.c - the synthetic scene's people: a standing figure in a
 * random pose whose region codes are PASCAL-Part's person parts, and its
 * clothes and skin (scene_internal.h). */
#include "scene_internal.h"

#include <math.h>
#include <stddef.h>

#include "mtlora/data/synthetic_scene.h"

_Static_assert(P_COUNT == SYNTHETIC_SCENE_PART_CODES, "part codes of synthetic_scene.h");

static const char *const PERSON_PART_NAMES[P_COUNT] = {
    NULL, "hair", "head", "neck", "torso", "luarm", "ruarm", "llarm", "rlarm",
    "lhand", "rhand", "luleg", "ruleg", "llleg", "rlleg", "lfoot", "rfoot",
};

const char *synthetic_scene_part_name(int code) {
    return code > 0 && code < P_COUNT ? PERSON_PART_NAMES[code] : NULL;
}

static const uint8_t SKIN_TONES[][3] = {{240, 200, 170}, {210, 160, 120}, {160, 110, 75}, {100, 65, 45}};
static const uint8_t HAIR_COLOURS[][3] = {{30, 25, 20}, {90, 60, 30}, {200, 170, 100}, {140, 60, 30}, {150, 150, 150}};
static const uint8_t SHIRT_COLOURS[][3] = {{200, 40, 40}, {40, 90, 180}, {235, 235, 235}, {40, 140, 70},
                                           {240, 200, 50}, {30, 30, 30}};
static const uint8_t PANTS_COLOURS[][3] = {{40, 60, 110}, {30, 30, 35}, {170, 150, 110}, {110, 110, 115}};
static const uint8_t SHOE_COLOURS[][3] = {{25, 20, 20}, {90, 60, 40}, {220, 220, 220}};

void person_draw_look(draws *d, person_look *p) {
    jitter_colour(d, PICK(d, SKIN_TONES), 12, p->skin);
    jitter_colour(d, PICK(d, HAIR_COLOURS), 10, p->hair);
    jitter_colour(d, PICK(d, SHIRT_COLOURS), 25, p->shirt);
    jitter_colour(d, PICK(d, PANTS_COLOURS), 15, p->pants);
    jitter_colour(d, PICK(d, SHOE_COLOURS), 10, p->shoes);
    p->short_sleeves = draw_chance(d, 0.4);
    p->shorts = draw_chance(d, 0.25);
}

/* Person coordinates: dx in body heights from the box centre, y down in
 * body heights; the box is aspect (= width/height) wide. */
typedef struct {
    canvas *c;
    double aspect;
} body_pen;

static double body_u(const body_pen *b, double dx) { return 0.5 + dx / b->aspect; }

static void body_limb(const body_pen *b, double x0, double y0, double x1, double y1, double r, int part) {
    paint_capsule(b->c, body_u(b, x0), y0, body_u(b, x1), y1, r, (uint8_t)part);
}

/* One arm or leg: two segments from a joint, angles from straight down
 * (positive = away from the body on that side). Returns the end point. */
static void body_chain(const body_pen *b, double side, double x, double y, const double len[2],
                       const double angle[2], const double radius[2], const int part[2],
                       double end[2]) {
    double mid_x = x + side * len[0] * sin(angle[0]), mid_y = y + len[0] * cos(angle[0]);
    double end_x = mid_x + side * len[1] * sin(angle[1]), end_y = mid_y + len[1] * cos(angle[1]);
    body_limb(b, x, y, mid_x, mid_y, radius[0], part[0]);
    body_limb(b, mid_x, mid_y, end_x, end_y, radius[1], part[1]);
    end[0] = end_x;
    end[1] = end_y;
}

/* A standing person in a random pose, painted back to front: legs, torso,
 * neck, hair, head, then arms (in front of the torso). */
void shape_person(canvas *c, draws *d, double aspect) {
    body_pen b = {c, aspect};
    double lean = draw_between(d, -0.02, 0.02);
    for (int s = 0; s < 2; s++) {
        double side = s == 0 ? 1.0 : -1.0; /* person's left first */
        double a1 = draw_between(d, -0.05, 0.3), a2 = a1 + draw_between(d, -0.25, 0.1);
        const double len[2] = {0.24, 0.22}, ang[2] = {a1, a2}, rad[2] = {0.05, 0.04};
        const int part[2] = {s == 0 ? P_LULEG : P_RULEG, s == 0 ? P_LLLEG : P_RLLEG};
        double ankle[2];
        body_chain(&b, side, side * 0.06, 0.50, len, ang, rad, part, ankle);
        body_limb(&b, ankle[0], ankle[1] + 0.005, ankle[0] + side * 0.06, ankle[1] + 0.012, 0.022,
                  s == 0 ? P_LFOOT : P_RFOOT);
    }
    const double torso[8] = {body_u(&b, -0.115), 0.19, body_u(&b, 0.115), 0.19,
                             body_u(&b, 0.09), 0.53, body_u(&b, -0.09), 0.53};
    paint_quad(c, torso, P_TORSO);
    body_limb(&b, -0.09, 0.215, 0.09, 0.215, 0.03, P_TORSO);
    paint_rect(c, body_u(&b, lean - 0.026), 0.15, body_u(&b, lean + 0.026), 0.20, P_NECK);
    if (draw_chance(d, 0.85))
        paint_ellipse(c, body_u(&b, lean), 0.073, 0.068 / aspect, 0.066, P_HAIR);
    paint_ellipse(c, body_u(&b, lean), 0.095, 0.060 / aspect, 0.072, P_HEAD);
    for (int s = 0; s < 2; s++) {
        double side = s == 0 ? 1.0 : -1.0;
        double a1 = draw_between(d, -0.1, 1.3);
        double bend = draw_between(d, 0.0, 1.5);
        double a2 = draw_chance(d, 0.5) ? a1 + bend : a1 - bend; /* out/up or across the body */
        const double len[2] = {0.16, 0.15}, ang[2] = {a1, a2}, rad[2] = {0.036, 0.03};
        const int part[2] = {s == 0 ? P_LUARM : P_RUARM, s == 0 ? P_LLARM : P_RLARM};
        double wrist[2];
        body_chain(&b, side, side * 0.105, 0.215, len, ang, rad, part, wrist);
        paint_disc(c, body_u(&b, wrist[0]), wrist[1], 0.03, (uint8_t)(s == 0 ? P_LHAND : P_RHAND));
    }
}

const float *person_part_colour(const person_look *p, int part) {
    switch (part) {
    case P_HAIR: return p->hair;
    case P_HEAD: case P_NECK: case P_LHAND: case P_RHAND: return p->skin;
    case P_TORSO: case P_LUARM: case P_RUARM: return p->shirt;
    case P_LLARM: case P_RLARM: return p->short_sleeves ? p->skin : p->shirt;
    case P_LULEG: case P_RULEG: return p->pants;
    case P_LLLEG: case P_RLLEG: return p->shorts ? p->skin : p->pants;
    default: return p->shoes;
    }
}
