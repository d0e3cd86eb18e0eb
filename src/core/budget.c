/* adx_budget implementation: a compare-and-swap loop, so concurrent charges
 * can never together pass the limit. */
#include <inttypes.h>

#include "adx_common.h"
#include "adx_err.h"

void adx_budget_init(adx_budget *b, uint64_t limit)
{
    b->limit = limit;
    atomic_store(&b->used, 0);
    atomic_store(&b->peak, 0);
}

int adx_budget_charge(adx_budget *b, uint64_t bytes, const char *pointer, adx_err *err)
{
    if (!b) return 0;
    uint64_t cur = atomic_load_explicit(&b->used, memory_order_relaxed), next;
    do {
        if (__builtin_add_overflow(cur, bytes, &next) || (b->limit && next > b->limit))
            return adx_err_set(err, ADX_E_LIMIT, pointer,
                               "the request needs more than max_request_memory = %" PRIu64 " bytes",
                               b->limit);
    } while (!atomic_compare_exchange_weak_explicit(&b->used, &cur, next, memory_order_relaxed,
                                                    memory_order_relaxed));
    uint64_t pk = atomic_load_explicit(&b->peak, memory_order_relaxed);
    while (next > pk && !atomic_compare_exchange_weak_explicit(
                            &b->peak, &pk, next, memory_order_relaxed, memory_order_relaxed))
        ;
    return 0;
}

void adx_budget_release(adx_budget *b, uint64_t bytes)
{
    if (!b) return;
    uint64_t cur = atomic_load_explicit(&b->used, memory_order_relaxed), next;
    do {
        next = cur > bytes ? cur - bytes : 0;
    } while (!atomic_compare_exchange_weak_explicit(&b->used, &cur, next, memory_order_relaxed,
                                                    memory_order_relaxed));
}

uint64_t adx_budget_used(const adx_budget *b)
{
    return b ? atomic_load_explicit(&((adx_budget *)b)->used, memory_order_relaxed) : 0;
}

uint64_t adx_budget_peak(const adx_budget *b)
{
    return b ? atomic_load_explicit(&((adx_budget *)b)->peak, memory_order_relaxed) : 0;
}
