/* pth_call.c - what the unpickler does where Python would call something
 * (pth_internal.h): GLOBAL resolves only the names below; REDUCE, NEWOBJ
 * and BUILD act on those and turn every other global, and everything made
 * from a placeholder, into a new inert placeholder; BINPERSID makes a
 * storage reference of a torch persistent id. Nothing here reads tensor
 * data or runs anything: a tensor is its storage reference, offset, sizes
 * and strides, checked against the storage when it is chosen
 * (pth_tensor.c). A tensor call with arguments of the wrong kind is a
 * placeholder that says why, refused only if the chosen state dict holds it. */
#include <stdio.h>
#include <string.h>

#include "pth_internal.h"

static const struct {
    const char *module, *name;
    pv_global id;
    pth_stype stype;
} KNOWN[] = {
    {"collections", "OrderedDict", G_ORDERED_DICT, PTH_S_F32},
    {"torch._utils", "_rebuild_tensor", G_REBUILD_TENSOR, PTH_S_F32},
    {"torch._utils", "_rebuild_tensor_v2", G_REBUILD_TENSOR_V2, PTH_S_F32},
    {"torch._utils", "_rebuild_parameter", G_REBUILD_PARAMETER, PTH_S_F32},
    {"torch._utils", "_rebuild_parameter_with_state", G_REBUILD_PARAMETER_STATE, PTH_S_F32},
    {"torch", "FloatStorage", G_STORAGE, PTH_S_F32},
    {"torch", "HalfStorage", G_STORAGE, PTH_S_F16},
    {"torch", "BFloat16Storage", G_STORAGE, PTH_S_BF16},
    {"torch", "DoubleStorage", G_STORAGE, PTH_S_F64},
    {"torch", "LongStorage", G_STORAGE, PTH_S_I64},
    {"torch", "IntStorage", G_STORAGE, PTH_S_I32},
    {"torch", "ShortStorage", G_STORAGE, PTH_S_I16},
    {"torch", "CharStorage", G_STORAGE, PTH_S_I8},
    {"torch", "ByteStorage", G_STORAGE, PTH_S_U8},
    {"torch", "BoolStorage", G_STORAGE, PTH_S_BOOL},
};

pv *pk_global(pv_arena *a, const char *module, const char *name) {
    const size_t lm = strlen(module), ln = strlen(name);
    pv *g = pv_new(a, PV_GLOBAL, lm + ln + 2);
    if (!g) return NULL;
    char *s = (char *)(g + 1);
    memcpy(s, module, lm);
    s[lm] = '.';
    memcpy(s + lm + 1, name, ln + 1);
    g->u.g.name = s;
    g->u.g.id = G_UNKNOWN;
    for (size_t i = 0; i < sizeof KNOWN / sizeof *KNOWN; i++)
        if (!strcmp(KNOWN[i].module, module) && !strcmp(KNOWN[i].name, name)) {
            g->u.g.id = KNOWN[i].id;
            g->u.g.stype = KNOWN[i].stype;
        }
    return g;
}

static int is_int(const pv *v, int64_t lo) { return v->kind == PV_INT && v->u.i >= lo; }

static pv *pv_new_tensor(pv_arena *a) {
    pv *t = pv_new(a, PV_TENSOR, sizeof(pv_tensor));
    if (t) t->u.t = (pv_tensor *)(t + 1);
    return t;
}

/* _rebuild_tensor(storage, offset, size, stride) and _v2 (..., requires_grad,
 * backward_hooks[, metadata]): the arguments checked for kind, never called. */
static pv *rebuild_tensor(pv_arena *a, const pv *args, int v2) {
    const size_t n = args->u.seq.n;
    if (v2 ? n != 6 && n != 7 : n != 4)
        return pv_new_placeholder(a, "tensor call with %zu arguments", n);
    pv *const *v = args->u.seq.v;
    if (v[0]->kind != PV_STORAGE) {
        char kind[PTH_KIND_LEN];
        pv_kind_name(v[0], kind, sizeof kind);
        return pv_new_placeholder(a, "tensor over a %.100s", kind);
    }
    if (!is_int(v[1], 0)) return pv_new_placeholder(a, "tensor with a bad storage offset");
    const pv *size = v[2], *stride = v[3];
    if (size->kind != PV_TUPLE || stride->kind != PV_TUPLE || size->u.seq.n != stride->u.seq.n)
        return pv_new_placeholder(a, "tensor whose sizes and strides are not tuples of one length");
    if (size->u.seq.n > PTH_MAX_DIMS)
        return pv_new_placeholder(a, "tensor of %zu dimensions (at most %d)", size->u.seq.n, PTH_MAX_DIMS);
    if (v2 && v[4]->kind != PV_BOOL) return pv_new_placeholder(a, "tensor with a non-bool requires_grad");
    pv *t = pv_new_tensor(a);
    if (!t) return NULL;
    t->u.t->storage = v[0];
    t->u.t->offset = v[1]->u.i;
    t->u.t->ndim = (int)size->u.seq.n;
    for (int d = 0; d < t->u.t->ndim; d++) {
        const pv *s = size->u.seq.v[d], *r = stride->u.seq.v[d];
        if (!is_int(s, 0) || !is_int(r, 0))
            return pv_new_placeholder(a, "tensor with a size or stride that is not an int >= 0");
        t->u.t->shape[d] = s->u.i;
        t->u.t->stride[d] = r->u.i;
    }
    return t;
}

/* _rebuild_parameter(tensor, requires_grad, hooks[, state]): the tensor, marked. */
static pv *rebuild_parameter(pv_arena *a, const pv *args, size_t want) {
    if (args->u.seq.n != want) return pv_new_placeholder(a, "parameter call with %zu arguments", args->u.seq.n);
    const pv *x = args->u.seq.v[0];
    if (x->kind != PV_TENSOR) {
        char kind[PTH_KIND_LEN];
        pv_kind_name(x, kind, sizeof kind);
        return pv_new_placeholder(a, "parameter of a %.100s", kind);
    }
    pv *t = pv_new_tensor(a);
    if (!t) return NULL;
    *t->u.t = *x->u.t;
    t->u.t->is_parameter = 1;
    return t;
}

/* OrderedDict() or OrderedDict([(k, v), ...]). */
static pv *ordered_dict(pv_arena *a, const pv *args) {
    pv *d = pv_new(a, PV_DICT, 0);
    if (!d || args->u.seq.n == 0) return d;
    const pv *items = args->u.seq.v[0];
    if (args->u.seq.n != 1 || (items->kind != PV_LIST && items->kind != PV_TUPLE))
        return pv_new_placeholder(a, "collections.OrderedDict of unusual arguments");
    for (size_t i = 0; i < items->u.seq.n; i++) {
        const pv *kv = items->u.seq.v[i];
        if (kv->kind != PV_TUPLE || kv->u.seq.n != 2)
            return pv_new_placeholder(a, "collections.OrderedDict of unusual arguments");
        if (pv_push(a, d, kv->u.seq.v[0]) || pv_push(a, d, kv->u.seq.v[1])) return NULL;
    }
    return d;
}

pv *pk_reduce(const pk_ctx *c, pv *f, pv *args, const char **why) {
    pv_arena *a = c->arena;
    if (f->kind == PV_PLACEHOLDER) return pv_new_placeholder(a, "%s", f->u.what);
    if (f->kind != PV_GLOBAL) {
        *why = "REDUCE on a value that is not a callable";
        return NULL;
    }
    if (f->u.g.id == G_UNKNOWN || f->u.g.id == G_STORAGE) return pv_new_placeholder(a, "%s", f->u.g.name);
    if (args->kind != PV_TUPLE) {
        *why = "REDUCE arguments are not a tuple";
        return NULL;
    }
    switch (f->u.g.id) {
    case G_ORDERED_DICT: return ordered_dict(a, args);
    case G_REBUILD_TENSOR: return rebuild_tensor(a, args, 0);
    case G_REBUILD_TENSOR_V2: return rebuild_tensor(a, args, 1);
    case G_REBUILD_PARAMETER: return rebuild_parameter(a, args, 3);
    case G_REBUILD_PARAMETER_STATE: return rebuild_parameter(a, args, 4);
    default: return pv_new_placeholder(a, "%s", f->u.g.name);
    }
}

pv *pk_newobj(const pk_ctx *c, pv *cls, pv *args, const char **why) {
    pv_arena *a = c->arena;
    if (args->kind != PV_TUPLE) {
        *why = "NEWOBJ arguments are not a tuple";
        return NULL;
    }
    if (cls->kind == PV_PLACEHOLDER) return pv_new_placeholder(a, "%s", cls->u.what);
    if (cls->kind != PV_GLOBAL) {
        *why = "NEWOBJ on a value that is not a class";
        return NULL;
    }
    if (cls->u.g.id == G_ORDERED_DICT) return pv_new(a, PV_DICT, 0);
    return pv_new_placeholder(a, "%s", cls->u.g.name);
}

pv *pk_build(const pk_ctx *c, pv *obj, pv *state, const char **why) {
    (void)state;
    switch (obj->kind) {
    case PV_DICT:   /* an OrderedDict's attributes (a state dict's _metadata): dropped */
    case PV_TENSOR: /* a tensor's __dict__: dropped */
        return obj;
    case PV_PLACEHOLDER: return pv_new_placeholder(c->arena, "%s", obj->u.what);
    case PV_GLOBAL: return pv_new_placeholder(c->arena, "%s", obj->u.g.name);
    default: *why = "BUILD on a value that has no state"; return NULL;
    }
}

static int is_str(const pv *v, size_t max) {
    return v->kind == PV_STR && v->u.str.len <= max && strlen(v->u.str.s) == v->u.str.len;
}

pv *pk_persistent(const pk_ctx *c, pv *pid, const char **why) {
    pv_arena *a = c->arena;
    (void)why;
    if (pid->kind != PV_TUPLE || !pid->u.seq.n || !is_str(pid->u.seq.v[0], 64) ||
        strcmp(pid->u.seq.v[0]->u.str.s, "storage"))
        return pv_new_placeholder(a, "persistent id that is not a storage");
    const size_t n = pid->u.seq.n;
    pv *const *v = pid->u.seq.v;
    if (n != (c->legacy ? 6u : 5u))
        return pv_new_placeholder(a, "storage persistent id of %zu items (%d expected)", n, c->legacy ? 6 : 5);
    if (v[1]->kind != PV_GLOBAL || v[1]->u.g.id != G_STORAGE) {
        char kind[PTH_KIND_LEN];
        pv_kind_name(v[1], kind, sizeof kind);
        return pv_new_placeholder(a, "storage of type %.100s", kind);
    }
    if (!is_str(v[2], 200) || !v[2]->u.str.len || !is_str(v[3], 200) || !is_int(v[4], 0))
        return pv_new_placeholder(a, "storage persistent id with a bad key, location or size");
    pv *s = pv_new(a, PV_STORAGE, sizeof(pv_storage));
    if (!s) return NULL;
    s->u.sto = (pv_storage *)(s + 1);
    s->u.sto->stype = v[1]->u.g.stype;
    s->u.sto->key = v[2]->u.str.s;
    s->u.sto->numel = s->u.sto->root_numel = v[4]->u.i;
    if (c->legacy && v[5]->kind != PV_NONE) { /* view_metadata (view_key, offset, size) */
        const pv *m = v[5];
        if (m->kind != PV_TUPLE || m->u.seq.n != 3 || !is_str(m->u.seq.v[0], 200) ||
            !is_int(m->u.seq.v[1], 0) || !is_int(m->u.seq.v[2], 0) ||
            m->u.seq.v[1]->u.i > s->u.sto->root_numel ||
            m->u.seq.v[2]->u.i > s->u.sto->root_numel - m->u.seq.v[1]->u.i)
            return pv_new_placeholder(a, "storage view outside its storage");
        s->u.sto->base = m->u.seq.v[1]->u.i;
        s->u.sto->numel = m->u.seq.v[2]->u.i;
    }
    if (pv_note_storage(a, s)) return NULL;
    return s;
}
