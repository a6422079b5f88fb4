/*
 * stats.c - the additive statistics of evaluations: allocation, exact merge, comparison and a
 * portable byte form for stores.
 *
 * A segloss_stats is one allocation: the header struct followed by its per-class arrays, so a
 * clone is a memcpy plus pointer fix-up and a free is one call.
 */
#include <stdlib.h>
#include <string.h>

#include "common/common_internal.h"
#include "loss/loss_internal.h"
#include "segloss/errors.h"

typedef struct stats_layout {
    size_t sums_off, counts_off, confusion_off, total;
} stats_layout;

static int layout_for(size_t c, stats_layout *l)
{
    size_t cc;
    if (c == 0 || c > SEGLOSS_MAX_CLASSES_CEILING || segloss_mul_size(c, c, &cc))
        return SEGLOSS_EINVAL;
    size_t header = (sizeof(segloss_stats) + 15) & ~(size_t)15;
    l->sums_off = header;
    l->counts_off = l->sums_off + 2 * c * sizeof(segloss_sum);
    l->confusion_off = l->counts_off + 2 * c * sizeof(uint64_t);
    l->total = l->confusion_off + cc * sizeof(uint64_t);
    return 0;
}

static void wire_arrays(segloss_stats *s, const stats_layout *l)
{
    char *base = (char *)s;
    size_t c = s->num_classes;
    s->dice_tp = (segloss_sum *)(void *)(base + l->sums_off);
    s->dice_psum = s->dice_tp + c;
    s->fscore_tp = (uint64_t *)(void *)(base + l->counts_off);
    s->fscore_pos = s->fscore_tp + c;
    s->confusion = (uint64_t *)(void *)(base + l->confusion_off);
}

segloss_stats *segloss_stats_new(size_t num_classes, segloss_semantics semantics)
{
    stats_layout l;
    if (layout_for(num_classes, &l))
        return NULL;
    /* on lines of its own: each evaluation worker adds its chunks to one of these */
    segloss_stats *s = segloss__zalloc_lines(l.total);
    if (!s)
        return NULL;
    s->num_classes = num_classes;
    s->semantics = semantics;
    wire_arrays(s, &l);
    return s;
}

void segloss_stats_free(segloss_stats *stats)
{
    free(stats);
}

segloss_stats *segloss_stats_clone(const segloss_stats *stats)
{
    stats_layout l;
    if (!stats || layout_for(stats->num_classes, &l))
        return NULL;
    segloss_stats *s = malloc(l.total);
    if (!s)
        return NULL;
    memcpy(s, stats, l.total);
    wire_arrays(s, &l);
    return s;
}

int segloss_stats_item_counts(const segloss_stats *stats, uint64_t *counts)
{
    if (!stats || !counts)
        return SEGLOSS_EINVAL;
    size_t c = stats->num_classes;
    uint64_t *truth = counts, *predicted = counts + c, *both = counts + 2 * c;
    memset(counts, 0, 3 * c * sizeof *counts);
    for (size_t r = 0; r < c; r++) {
        const uint64_t *row = stats->confusion + r * c;
        for (size_t k = 0; k < c; k++) {
            truth[r] += row[k];
            predicted[k] += row[k];
        }
        both[r] = row[r];
    }
    return 0;
}

int segloss_stats_merge(segloss_stats *into, const segloss_stats *from)
{
    size_t c = into->num_classes;
    if (from->num_classes != c || from->semantics != into->semantics)
        return SEGLOSS_EINVAL;
    /* Check every sum first, so a failed merge leaves `into` untouched. */
    segloss_stats *t = segloss_stats_clone(into);
    if (!t)
        return SEGLOSS_ENOMEM;
    int rc = 0;
    rc |= segloss__sum_add(&t->ce_num, from->ce_num);
    rc |= segloss__sum_add(&t->ce_den, from->ce_den);
    rc |= segloss__sum_add(&t->focal_num, from->focal_num);
    for (size_t k = 0; k < c; k++) {
        rc |= segloss__sum_add(&t->dice_tp[k], from->dice_tp[k]);
        rc |= segloss__sum_add(&t->dice_psum[k], from->dice_psum[k]);
        t->fscore_tp[k] += from->fscore_tp[k];
        t->fscore_pos[k] += from->fscore_pos[k];
    }
    for (size_t i = 0; i < c * c; i++)
        t->confusion[i] += from->confusion[i];
    t->batches += from->batches;
    t->pixels_total += from->pixels_total;
    t->pixels_valid += from->pixels_valid;
    if (rc == 0) {
        stats_layout l;
        layout_for(c, &l);
        memcpy((char *)into + sizeof(segloss_stats), (char *)t + sizeof(segloss_stats),
               l.total - sizeof(segloss_stats));
        into->batches = t->batches;
        into->pixels_total = t->pixels_total;
        into->pixels_valid = t->pixels_valid;
        into->ce_num = t->ce_num;
        into->ce_den = t->ce_den;
        into->focal_num = t->focal_num;
    }
    segloss_stats_free(t);
    return rc ? SEGLOSS_ELIMIT : 0;
}

static int sum_eq(segloss_sum a, segloss_sum b)
{
    return a.lo == b.lo && a.hi == b.hi;
}

int segloss_stats_equal(const segloss_stats *a, const segloss_stats *b)
{
    size_t c = a->num_classes;
    if (b->num_classes != c || a->semantics != b->semantics || a->batches != b->batches ||
        a->pixels_total != b->pixels_total || a->pixels_valid != b->pixels_valid ||
        !sum_eq(a->ce_num, b->ce_num) || !sum_eq(a->ce_den, b->ce_den) ||
        !sum_eq(a->focal_num, b->focal_num))
        return 0;
    for (size_t k = 0; k < c; k++)
        if (!sum_eq(a->dice_tp[k], b->dice_tp[k]) || !sum_eq(a->dice_psum[k], b->dice_psum[k]) ||
            a->fscore_tp[k] != b->fscore_tp[k] || a->fscore_pos[k] != b->fscore_pos[k])
            return 0;
    return memcmp(a->confusion, b->confusion, c * c * sizeof(uint64_t)) == 0;
}

/* Byte form: "SLST", u32 version, u32 C, u32 semantics, u64 batches, pixels_total,
 * pixels_valid, 3 sums, then C sums tp, C sums psum, C u64 fscore_tp, C u64 fscore_pos, C*C
 * u64 confusion. A sum is lo then hi, each u64. All little-endian. */
#define STATS_MAGIC "SLST"
#define STATS_VERSION 1u

static void put_u64(unsigned char **p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        (*p)[i] = (unsigned char)(v >> (8 * i));
    *p += 8;
}

static void put_u32(unsigned char **p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        (*p)[i] = (unsigned char)(v >> (8 * i));
    *p += 4;
}

static uint64_t get_u64(const unsigned char **p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v |= (uint64_t)(*p)[i] << (8 * i);
    *p += 8;
    return v;
}

static uint32_t get_u32(const unsigned char **p)
{
    uint32_t v = 0;
    for (int i = 0; i < 4; i++)
        v |= (uint32_t)(*p)[i] << (8 * i);
    *p += 4;
    return v;
}

static void put_sum(unsigned char **p, segloss_sum s)
{
    put_u64(p, s.lo);
    put_u64(p, (uint64_t)s.hi);
}

static segloss_sum get_sum(const unsigned char **p)
{
    segloss_sum s;
    s.lo = get_u64(p);
    s.hi = (int64_t)get_u64(p);
    return s;
}

static size_t serialized_size(size_t c)
{
    return 4 + 4 + 4 + 4 + 3 * 8 + 3 * 16 + c * (16 + 16 + 8 + 8) + c * c * 8;
}

int segloss_stats_serialize(const segloss_stats *s, void *buf, size_t buf_len, size_t *needed)
{
    size_t c = s->num_classes;
    *needed = serialized_size(c);
    if (!buf || buf_len < *needed)
        return SEGLOSS_EINVAL;
    unsigned char *p = buf;
    memcpy(p, STATS_MAGIC, 4);
    p += 4;
    put_u32(&p, STATS_VERSION);
    put_u32(&p, (uint32_t)c);
    put_u32(&p, (uint32_t)s->semantics);
    put_u64(&p, s->batches);
    put_u64(&p, s->pixels_total);
    put_u64(&p, s->pixels_valid);
    put_sum(&p, s->ce_num);
    put_sum(&p, s->ce_den);
    put_sum(&p, s->focal_num);
    for (size_t k = 0; k < c; k++)
        put_sum(&p, s->dice_tp[k]);
    for (size_t k = 0; k < c; k++)
        put_sum(&p, s->dice_psum[k]);
    for (size_t k = 0; k < c; k++)
        put_u64(&p, s->fscore_tp[k]);
    for (size_t k = 0; k < c; k++)
        put_u64(&p, s->fscore_pos[k]);
    for (size_t i = 0; i < c * c; i++)
        put_u64(&p, s->confusion[i]);
    return 0;
}

int segloss_stats_deserialize(const void *buf, size_t len, segloss_stats **out)
{
    const unsigned char *p = buf;
    *out = NULL;
    if (len < 16 || memcmp(p, STATS_MAGIC, 4) != 0)
        return SEGLOSS_EFORMAT;
    p += 4;
    if (get_u32(&p) != STATS_VERSION)
        return SEGLOSS_EUNSUPPORTED;
    uint32_t c = get_u32(&p);
    uint32_t semantics = get_u32(&p);
    if (c == 0 || c > SEGLOSS_MAX_CLASSES_CEILING || semantics > SEGLOSS_STANDARD ||
        len != serialized_size(c))
        return SEGLOSS_EFORMAT;
    segloss_stats *s = segloss_stats_new(c, (segloss_semantics)semantics);
    if (!s)
        return SEGLOSS_ENOMEM;
    s->batches = get_u64(&p);
    s->pixels_total = get_u64(&p);
    s->pixels_valid = get_u64(&p);
    s->ce_num = get_sum(&p);
    s->ce_den = get_sum(&p);
    s->focal_num = get_sum(&p);
    for (size_t k = 0; k < c; k++)
        s->dice_tp[k] = get_sum(&p);
    for (size_t k = 0; k < c; k++)
        s->dice_psum[k] = get_sum(&p);
    for (size_t k = 0; k < c; k++)
        s->fscore_tp[k] = get_u64(&p);
    for (size_t k = 0; k < c; k++)
        s->fscore_pos[k] = get_u64(&p);
    for (size_t i = 0; i < (size_t)c * c; i++)
        s->confusion[i] = get_u64(&p);
    if (s->pixels_valid > s->pixels_total) {
        segloss_stats_free(s);
        return SEGLOSS_EFORMAT;
    }
    *out = s;
    return 0;
}
