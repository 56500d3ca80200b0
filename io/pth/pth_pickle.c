/* pth_pickle.c - the restricted unpickler (pth_internal.h): the opcodes of
 * protocols 2-5 that state dicts and checkpoints use, over a bounded stack,
 * memo and MARK nesting. Nothing is imported or called: GLOBAL names a
 * value (pk_global), REDUCE / NEWOBJ / BUILD / BINPERSID go to pth_call.c,
 * which knows a few globals and makes inert placeholders of every other.
 *
 * Bounds: the stack holds at most PTH_MAX_STACK items, MARKs nest at most
 * PTH_MAX_DEPTH deep, a memo id must be one Python's pickler could have
 * assigned by then (below the byte offset: ids count up from 0), every
 * length is checked against the bytes left before anything is allocated,
 * and all values live in an arena bounded by the pickle's size. Any
 * opcode not listed (text protocols 0/1, out-of-band buffers) is refused
 * naming its byte offset. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pth_internal.h"

typedef struct {
    const pk_ctx *c;
    const unsigned char *p;
    size_t len, pos, op_at; /* op_at: offset of the opcode being run */
    pv **stack;
    size_t sp, scap;
    size_t marks[PTH_MAX_DEPTH];
    int nmarks;
    pv **memo;
    size_t nmemo;      /* slots */
    size_t memo_count; /* ids set: MEMOIZE's next id, as len(memo) in Python */
    char *err;
    size_t errlen;
} pk;

static mt_status bad(pk *k, const char *fmt, const char *detail) {
    char what[200];
    snprintf(what, sizeof what, fmt, detail);
    return mt_errf(k->err, k->errlen, MT_ERR_FORMAT, "%s: %s: malformed pickle at byte %zu: %s",
                   k->c->path, k->c->entry, k->op_at, what);
}

static mt_status nomem(pk *k) {
    return mt_errf(k->err, k->errlen, MT_ERR_FORMAT,
                   "%s: %s: the pickle needs more memory than its %zu bytes justify (refused at byte "
                   "%zu)", k->c->path, k->c->entry, k->len, k->op_at);
}

/* n bytes from the input, or NULL when fewer are left. */
static const unsigned char *take(pk *k, size_t n) {
    if (n > k->len - k->pos) return NULL;
    const unsigned char *q = k->p + k->pos;
    k->pos += n;
    return q;
}

static mt_status push(pk *k, pv *v) {
    if (!v) return k->c->arena->over ? nomem(k) : bad(k, "%s", "no value");
    if (k->sp == k->scap) {
        if (k->scap >= PTH_MAX_STACK) return bad(k, "stack deeper than %s items", "4194304");
        const size_t nc = k->scap ? k->scap * 2 : 64;
        pv **s = realloc(k->stack, nc * sizeof *s);
        if (!s) return nomem(k);
        k->stack = s;
        k->scap = nc;
    }
    k->stack[k->sp++] = v;
    return MT_OK;
}

/* Where the innermost MARK is: the stack Python's unpickler sees starts there. */
static size_t floor_of(const pk *k) { return k->nmarks ? k->marks[k->nmarks - 1] : 0; }
/* Items above the innermost MARK. */
static size_t above(const pk *k) { return k->sp - floor_of(k); }

/* The top item, NULL if the stack (above the innermost MARK) is empty. */
static pv *pop(pk *k) { return above(k) ? k->stack[--k->sp] : NULL; }
static pv *top(pk *k) { return above(k) ? k->stack[k->sp - 1] : NULL; }

/* Pops to the innermost MARK: the items are stack[*from .. sp). */
static mt_status pop_mark(pk *k, size_t *from) {
    if (!k->nmarks) return bad(k, "%s without a MARK", "an opcode that needs a MARK");
    *from = k->marks[--k->nmarks];
    return MT_OK;
}

static mt_status seq_from(pk *k, pv_kind kind, size_t from) {
    pv *t = pv_new(k->c->arena, kind, 0);
    for (size_t i = from; t && i < k->sp; i++)
        if (pv_push(k->c->arena, t, k->stack[i])) t = NULL;
    k->sp = from;
    return push(k, t);
}

static mt_status memo_put(pk *k, uint64_t id) {
    pv *v = top(k);
    if (!v) return bad(k, "%s on an empty stack", "a memo put");
    /* Python's pickler numbers memo entries 0, 1, 2, ... as it writes
     * them, so an id is always below the byte offset. */
    if (id >= k->op_at + 1) return bad(k, "memo id %s out of range", "(above the byte offset)");
    if (id >= k->nmemo) {
        size_t nc = k->nmemo ? k->nmemo : 64;
        while (nc <= id) nc *= 2;
        pv **m = realloc(k->memo, nc * sizeof *m);
        if (!m) return nomem(k);
        memset(m + k->nmemo, 0, (nc - k->nmemo) * sizeof *m);
        k->memo = m;
        k->nmemo = nc;
    }
    if (!k->memo[id]) k->memo_count++;
    k->memo[id] = v;
    return MT_OK;
}

static mt_status memo_get(pk *k, uint64_t id) {
    if (id >= k->nmemo || !k->memo[id]) return bad(k, "memo id %s was never put", "(BINGET)");
    return push(k, k->memo[id]);
}

static pv *new_int(pk *k, int64_t v) {
    pv *x = pv_new(k->c->arena, PV_INT, 0);
    if (x) x->u.i = v;
    return x;
}

/* LONG1 / LONG4: n bytes of two's complement, little-endian. */
static mt_status long_n(pk *k, size_t n) {
    const unsigned char *b = take(k, n);
    if (!b) return bad(k, "%s past the end", "a long");
    if (n <= 8) {
        uint64_t u = 0;
        for (size_t i = n; i-- > 0;) u = u << 8 | b[i];
        if (n && n < 8 && (b[n - 1] & 0x80)) u |= ~(uint64_t)0 << (8 * n); /* sign-extend */
        return push(k, new_int(k, (int64_t)u));
    }
    pv *x = pv_new(k->c->arena, PV_BIGINT, 0);
    if (x) {
        x->u.big.n = n;
        memcpy(x->u.big.b, b, n < sizeof x->u.big.b ? n : sizeof x->u.big.b);
    }
    return push(k, x);
}

static mt_status string_n(pk *k, size_t lenbytes, pv_kind kind) {
    const unsigned char *lb = take(k, lenbytes);
    if (!lb) return bad(k, "%s past the end", "a string length");
    uint64_t n = lenbytes == 1 ? lb[0] : lenbytes == 4 ? pth_le32(lb) : pth_le64(lb);
    if (n > k->len - k->pos) return bad(k, "%s longer than the bytes left", "a string");
    const unsigned char *s = take(k, (size_t)n);
    if (kind == PV_STR && !pth_utf8_ok(s, (size_t)n)) return bad(k, "%s", "a string that is not UTF-8");
    return push(k, pv_new_str(k->c->arena, kind, s, (size_t)n));
}

/* GLOBAL's "module\nname\n" (printable ASCII, at most 200 bytes each). */
static mt_status text_line(pk *k, char *out, size_t cap) {
    size_t n = 0;
    for (;;) {
        const unsigned char *c = take(k, 1);
        if (!c) return bad(k, "%s past the end", "GLOBAL");
        if (*c == '\n') break;
        if (*c < 0x20 || *c > 0x7e || n + 1 >= cap) return bad(k, "GLOBAL %s", "name not printable or too long");
        out[n++] = (char)*c;
    }
    out[n] = 0;
    return MT_OK;
}

static mt_status op_global(pk *k) {
    char mod[201], name[201];
    mt_status st = text_line(k, mod, sizeof mod);
    if (!st) st = text_line(k, name, sizeof name);
    return st ? st : push(k, pk_global(k->c->arena, mod, name));
}

static mt_status op_stack_global(pk *k) {
    pv *name = pop(k), *mod = pop(k);
    if (!name || !mod || name->kind != PV_STR || mod->kind != PV_STR)
        return bad(k, "%s", "STACK_GLOBAL needs two strings");
    if (mod->u.str.len > 200 || name->u.str.len > 200 || strlen(mod->u.str.s) != mod->u.str.len ||
        strlen(name->u.str.s) != name->u.str.len)
        return bad(k, "%s", "STACK_GLOBAL name too long or with NUL");
    return push(k, pk_global(k->c->arena, mod->u.str.s, name->u.str.s));
}

/* SETITEM(S) / APPEND(S) / ADDITEMS: items stack[from..sp) into target. */
static mt_status add_items(pk *k, pv *target, size_t from, int pairs) {
    if (!target) return bad(k, "%s", "items added to nothing");
    const size_t n = k->sp - from;
    if (pairs && n % 2) return bad(k, "%s", "SETITEMS with an odd number of items");
    int ok = pairs ? target->kind == PV_DICT
                   : target->kind == PV_LIST || target->kind == PV_SET;
    if (target->kind == PV_PLACEHOLDER) { /* a dict or list subclass (CfgNode): inert */
        k->sp = from;
        return MT_OK;
    }
    if (!ok) return bad(k, "items added to a %s", pairs ? "non-dict" : "non-list");
    for (size_t i = from; i < k->sp; i++)
        if (pv_push(k->c->arena, target, k->stack[i])) return nomem(k);
    k->sp = from;
    return MT_OK;
}

static mt_status call_result(pk *k, pv *v, const char *why) {
    if (!v && why) return bad(k, "%s", why);
    return push(k, v);
}

/* One opcode; *done set at STOP. */
static mt_status step(pk *k, int *done) {
    k->op_at = k->pos;
    const unsigned char *opb = take(k, 1);
    if (!opb) return bad(k, "%s", "no STOP before the end (truncated?)");
    const unsigned char op = *opb;
    const unsigned char *b;
    pv *x, *y, *z;
    size_t from = 0;
    mt_status st;
    const char *why = NULL;
    pv_arena *a = k->c->arena;
    switch (op) {
    case 0x80: /* PROTO */
        if (!(b = take(k, 1))) return bad(k, "%s", "PROTO past the end");
        if (*b < 2 || *b > 5) return bad(k, "pickle protocol %s (2 to 5 are read)", *b < 2 ? "0/1" : "above 5");
        return MT_OK;
    case 0x95: /* FRAME: the whole pickle is in memory, only its length is checked */
        if (!(b = take(k, 8))) return bad(k, "%s", "FRAME past the end");
        if (pth_le64(b) > k->len - k->pos) return bad(k, "%s", "FRAME longer than the bytes left");
        return MT_OK;
    case '.': /* STOP */
        *done = 1;
        return MT_OK;
    case '(': /* MARK */
        if (k->nmarks >= PTH_MAX_DEPTH) return bad(k, "%s", "MARKs nested more than 100 deep");
        k->marks[k->nmarks++] = k->sp;
        return MT_OK;
    case '0': /* POP */
        if (!pop(k)) {
            if (!k->nmarks || k->marks[k->nmarks - 1] != k->sp) return bad(k, "%s", "POP on an empty stack");
            k->nmarks--; /* POP of a MARK, as Python does */
        }
        return MT_OK;
    case '1': /* POP_MARK */
        if ((st = pop_mark(k, &from))) return st;
        k->sp = from;
        return MT_OK;
    case '2': /* DUP */
        if (!(x = top(k))) return bad(k, "%s", "DUP on an empty stack");
        return push(k, x);
    case 'c': return op_global(k);
    case 0x93: return op_stack_global(k);
    case '}': return push(k, pv_new(a, PV_DICT, 0));
    case ']': return push(k, pv_new(a, PV_LIST, 0));
    case ')': return push(k, &a->empty_tuple);
    case 0x8f: return push(k, pv_new(a, PV_SET, 0)); /* EMPTY_SET */
    case 0x85: case 0x86: case 0x87: { /* TUPLE1..3 */
        const size_t n = (size_t)(op - 0x84);
        if (above(k) < n) return bad(k, "%s", "TUPLEn with too few items");
        return seq_from(k, PV_TUPLE, k->sp - n);
    }
    case 't': case 'l': case 0x91: /* TUPLE, LIST, FROZENSET */
        if ((st = pop_mark(k, &from))) return st;
        return seq_from(k, op == 't' ? PV_TUPLE : op == 'l' ? PV_LIST : PV_SET, from);
    case 'd': /* DICT */
        if ((st = pop_mark(k, &from))) return st;
        if ((k->sp - from) % 2) return bad(k, "%s", "DICT with an odd number of items");
        return seq_from(k, PV_DICT, from);
    case 's': /* SETITEM: dict key value */
        if (above(k) < 3) return bad(k, "%s", "SETITEM needs a dict, a key and a value");
        return add_items(k, k->stack[k->sp - 3], k->sp - 2, 1);
    case 'a': /* APPEND: list value */
        if (above(k) < 2) return bad(k, "%s", "APPEND needs a list and a value");
        return add_items(k, k->stack[k->sp - 2], k->sp - 1, 0);
    case 'u': case 'e': case 0x90: /* SETITEMS, APPENDS, ADDITEMS: target MARK items */
        if ((st = pop_mark(k, &from))) return st;
        return add_items(k, from > floor_of(k) ? k->stack[from - 1] : NULL, from, op == 'u');
    case 'q': if (!(b = take(k, 1))) return bad(k, "%s", "BINPUT past the end");
        return memo_put(k, *b);
    case 'r': if (!(b = take(k, 4))) return bad(k, "%s", "LONG_BINPUT past the end");
        return memo_put(k, pth_le32(b));
    case 0x94: return memo_put(k, k->memo_count); /* MEMOIZE: the next id */
    case 'h': if (!(b = take(k, 1))) return bad(k, "%s", "BINGET past the end");
        return memo_get(k, *b);
    case 'j': if (!(b = take(k, 4))) return bad(k, "%s", "LONG_BINGET past the end");
        return memo_get(k, pth_le32(b));
    case 'J': if (!(b = take(k, 4))) return bad(k, "%s", "BININT past the end");
        return push(k, new_int(k, (int32_t)pth_le32(b)));
    case 'K': if (!(b = take(k, 1))) return bad(k, "%s", "BININT1 past the end");
        return push(k, new_int(k, *b));
    case 'M': if (!(b = take(k, 2))) return bad(k, "%s", "BININT2 past the end");
        return push(k, new_int(k, pth_le16(b)));
    case 0x8a: if (!(b = take(k, 1))) return bad(k, "%s", "LONG1 past the end");
        return long_n(k, *b);
    case 0x8b: if (!(b = take(k, 4))) return bad(k, "%s", "LONG4 past the end");
        if ((int32_t)pth_le32(b) < 0) return bad(k, "%s", "LONG4 of negative length");
        return long_n(k, pth_le32(b));
    case 'G': { /* BINFLOAT: big-endian double */
        if (!(b = take(k, 8))) return bad(k, "%s", "BINFLOAT past the end");
        uint64_t u = 0;
        for (int i = 0; i < 8; i++) u = u << 8 | b[i];
        if (!(x = pv_new(a, PV_FLOAT, 0))) return nomem(k);
        memcpy(&x->u.f, &u, 8);
        return push(k, x);
    }
    case 0x8c: return string_n(k, 1, PV_STR); /* SHORT_BINUNICODE */
    case 'X': return string_n(k, 4, PV_STR);  /* BINUNICODE */
    case 0x8d: return string_n(k, 8, PV_STR); /* BINUNICODE8 */
    /* SHORT_BINSTRING / BINSTRING: a Python 2 str, decoded as torch.load does (UTF-8) */
    case 'U': return string_n(k, 1, PV_STR);
    case 'T': /* signed length */
        if (k->len - k->pos >= 4 && (int32_t)pth_le32(k->p + k->pos) < 0)
            return bad(k, "%s", "BINSTRING of negative length");
        return string_n(k, 4, PV_STR);
    case 'C': return string_n(k, 1, PV_BYTES); /* SHORT_BINBYTES */
    case 'B': return string_n(k, 4, PV_BYTES);    /* BINBYTES */
    case 0x8e: case 0x96: return string_n(k, 8, PV_BYTES); /* BINBYTES8, BYTEARRAY8 */
    case 'N': return push(k, &a->none);
    case 0x88: return push(k, &a->yes); /* NEWTRUE */
    case 0x89: return push(k, &a->no);  /* NEWFALSE */
    case 0x82: case 0x83: case 0x84: { /* EXT1, EXT2, EXT4: the copyreg registry, never consulted */
        const size_t n = op == 0x82 ? 1 : op == 0x83 ? 2 : 4;
        if (!take(k, n)) return bad(k, "%s", "EXT past the end");
        return push(k, pv_new_placeholder(a, "copyreg extension"));
    }
    case 'R': /* REDUCE */
        if (!(y = pop(k)) || !(x = pop(k))) return bad(k, "%s", "REDUCE needs a callable and arguments");
        z = pk_reduce(k->c, x, y, &why);
        return call_result(k, z, why);
    case 0x81: /* NEWOBJ */
        if (!(y = pop(k)) || !(x = pop(k))) return bad(k, "%s", "NEWOBJ needs a class and arguments");
        z = pk_newobj(k->c, x, y, &why);
        return call_result(k, z, why);
    case 0x92: /* NEWOBJ_EX: the keyword arguments are dropped */
        if (!(z = pop(k)) || !(y = pop(k)) || !(x = pop(k)))
            return bad(k, "%s", "NEWOBJ_EX needs a class, arguments and keywords");
        if (z->kind != PV_DICT) return bad(k, "%s", "NEWOBJ_EX keywords are not a dict");
        z = pk_newobj(k->c, x, y, &why);
        return call_result(k, z, why);
    case 'b': /* BUILD */
        if (!(y = pop(k)) || !(x = pop(k))) return bad(k, "%s", "BUILD needs an object and a state");
        z = pk_build(k->c, x, y, &why);
        return call_result(k, z, why);
    case 'Q': /* BINPERSID */
        if (!(x = pop(k))) return bad(k, "%s", "BINPERSID needs an id");
        z = pk_persistent(k->c, x, &why);
        return call_result(k, z, why);
    default: {
        char what[64];
        snprintf(what, sizeof what, "opcode 0x%02x", op);
        return bad(k, "unsupported %s (protocols 2 to 5 are read)", what);
    }
    }
}

mt_status pk_load(const pk_ctx *c, const unsigned char *p, size_t len, size_t *used, pv **out,
                  char *err, size_t errlen) {
    pk k = {.c = c, .p = p, .len = len, .err = err, .errlen = errlen};
    *out = NULL;
    int done = 0;
    mt_status st = MT_OK;
    while (!st && !done) st = step(&k, &done);
    if (!st && (k.sp != 1 || k.nmarks))
        st = bad(&k, "%s", "STOP with not exactly one object on the stack");
    if (!st) {
        *out = k.stack[0];
        *used = k.pos;
    }
    free(k.stack);
    free(k.memo);
    return st;
}
