/* SPDX-License-Identifier: MIT */
/* The clocks every module reads: monotonic, fine and coarse. */
#include "shim.h"

#include <time.h>

/* Monotonic clock in ns. */
uint64_t clock_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* A cheaper monotonic clock, never behind clock_ns(). */
uint64_t clock_coarse_ns(void)
{
	static _Atomic uint64_t res_ns; /* set by any thread, same value */
	uint64_t res = atomic_load_explicit(&res_ns, memory_order_relaxed);
	struct timespec ts;

	if (UNLIKELY(!res)) {
		clock_getres(CLOCK_MONOTONIC_COARSE, &ts);
		res = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
		atomic_store_explicit(&res_ns, res, memory_order_relaxed);
	}
	clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec + res;
}
