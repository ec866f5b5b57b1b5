/*
 * Times GS1's own C engine (the GS1 Barcode Syntax Engine, gs1encoders, Apache-2.0) on
 * the same corpus as swt's bench `gs1_parse`, so the two can be compared side by side.
 * Only this driver is ours: the engine is NOT part of swt and is never committed; build
 * it yourself from its public source (with -O2, as its own Makefile does) and link this
 * file against it. `gs1_vs_engine.sh` beside this file runs both benches.
 *
 * Each corpus line goes to the engine entry point that matches swt's reading of it:
 *   "]xx..."                        gs1_encoder_setScanData (symbology id as scanned)
 *   "(..."                          gs1_encoder_setAIdataStr (bracketed AI syntax)
 *   "http://", "https://", any case gs1_encoder_setDataStr (Digital Link, or plain data)
 *   anything else                   gs1_encoder_setScanData("]d2" + line): an element
 *                                   string without symbology id, read as AI data
 * The "]d2" prefix is added once, when the corpus is loaded, not in the timed loop.
 *
 * Figures (2026-12-07; docs/benchmarks.md): on the 4,000-line mix the engine takes
 * 638-652 ns and 7,877 instructions per parse, swt 137-140 ns and 1,832 (4.55-4.75x in
 * time, 4.3x in instructions).
 *
 * Usage:
 *   gs1_engine_driver CORPUS [bench [ROUNDS]]   ns per parse, per class and for the mix
 *   gs1_engine_driver CORPUS verdicts          one verdict per line, in corpus order:
 *                                              "valid", "not_gs1" (accepted, no AIs) or
 *                                              "invalid<TAB>engine message"
 *   gs1_engine_driver CORPUS passes N          parse every line N times, untimed: for
 *                                              valgrind --tool=callgrind, whose counts
 *                                              (minus a run with 0) give instructions
 *                                              per parse where wall time is too noisy
 */

#define _POSIX_C_SOURCE 199309L

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "gs1encoders.h"

enum api { API_SCAN, API_AI, API_DATA };

struct line {
	char cls[32];
	enum api api;
	char *arg;	/* what the engine is given (owned) */
};

static enum api api_for(const char *in) {
	if (in[0] == ']')
		return API_SCAN;
	if (in[0] == '(')
		return API_AI;
	if (strncasecmp(in, "http://", 7) == 0 || strncasecmp(in, "https://", 8) == 0)
		return API_DATA;
	return API_SCAN;	/* with "]d2" prepended */
}

static int parse_one(gs1_encoder *ctx, const struct line *l) {
	switch (l->api) {
	case API_SCAN:
		return gs1_encoder_setScanData(ctx, l->arg);
	case API_AI:
		return gs1_encoder_setAIdataStr(ctx, l->arg);
	default:
		return gs1_encoder_setDataStr(ctx, l->arg);
	}
}

static double now_ns(void) {
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec * 1e9 + (double)t.tv_nsec;
}

static size_t load(const char *path, struct line **out) {
	FILE *f = fopen(path, "rb");
	size_t n = 0, cap = 1024;
	struct line *v = malloc(cap * sizeof *v);
	char buf[4096];

	if (!f || !v) {
		fprintf(stderr, "cannot read %s\n", path);
		exit(2);
	}
	while (fgets(buf, sizeof buf, f)) {
		char *tab = strchr(buf, '\t');
		size_t len;
		struct line *l;

		buf[strcspn(buf, "\n")] = '\0';
		if (!tab)
			continue;
		*tab = '\0';
		if (n == cap) {
			cap *= 2;
			v = realloc(v, cap * sizeof *v);
			if (!v)
				exit(2);
		}
		l = &v[n++];
		len = strlen(buf) < sizeof l->cls ? strlen(buf) : sizeof l->cls - 1;
		memcpy(l->cls, buf, len);
		l->cls[len] = '\0';
		l->api = api_for(tab + 1);
		len = strlen(tab + 1);
		l->arg = malloc(len + 4);
		if (!l->arg)
			exit(2);
		if (l->api == API_SCAN && tab[1] != ']') {
			memcpy(l->arg, "]d2", 3);
			memcpy(l->arg + 3, tab + 1, len + 1);
		} else {
			memcpy(l->arg, tab + 1, len + 1);
		}
	}
	fclose(f);
	*out = v;
	return n;
}

/* Best of `rounds` passes over the lines `sel` (pointers picked beforehand, so the timed
 * loop does nothing but call the engine), in ns per parse: the best pass is the one least
 * disturbed by the other work on a shared machine. */
static double time_lines(gs1_encoder *ctx, const struct line *const *sel, size_t c, int rounds) {
	double best = 1e30;
	volatile int sink = 0;
	size_t i;
	int r;

	if (c == 0)
		return 0;
	for (r = 0; r < rounds; r++) {
		double t = now_ns(), ns;
		for (i = 0; i < c; i++)
			sink += parse_one(ctx, sel[i]);
		ns = (now_ns() - t) / (double)c;
		if (r > 0 && ns < best)	/* round 0 warms the caches up */
			best = ns;
	}
	(void)sink;
	return best;
}

int main(int argc, char **argv) {
	struct line *v;
	const struct line **sel;
	size_t n, i, j, count;
	gs1_encoder *ctx;
	const char *mode = argc > 2 ? argv[2] : "bench";
	int rounds = argc > 3 ? atoi(argv[3]) : 200;

	if (argc < 2) {
		fprintf(stderr, "usage: %s CORPUS [bench [ROUNDS] | verdicts | passes N]\n", argv[0]);
		return 2;
	}
	n = load(argv[1], &v);
	ctx = gs1_encoder_init_ex(NULL, NULL);
	if (!ctx) {
		fprintf(stderr, "gs1_encoder_init_ex failed\n");
		return 2;
	}

	if (strcmp(mode, "passes") == 0) {
		int k, passes = argc > 3 ? atoi(argv[3]) : 1, ok = 0;
		for (k = 0; k < passes; k++)
			for (i = 0; i < n; i++)
				ok += parse_one(ctx, &v[i]);
		printf("passes: %d of %zu parsed\n", ok, n * (size_t)passes);
		return 0;
	}

	if (strcmp(mode, "verdicts") == 0) {
		for (i = 0; i < n; i++) {
			if (!parse_one(ctx, &v[i]))
				printf("invalid\t%s\n", gs1_encoder_getErrMsg(ctx));
			else if (gs1_encoder_getAIdataStr(ctx) == NULL)
				printf("not_gs1\n");
			else
				printf("valid\n");
		}
		return 0;
	}

	printf("GS1 engine %s, %zu lines, best of %d rounds\n", gs1_encoder_getVersion(), n, rounds);
	sel = calloc(n + 1, sizeof *sel);
	if (!sel)
		return 2;
	/* Classes in order of first appearance, then the whole mix. */
	for (i = 0; i < n; i++) {
		int seen = 0;
		for (j = 0; j < i && !seen; j++)
			seen = strcmp(v[j].cls, v[i].cls) == 0;
		if (seen)
			continue;
		count = 0;
		for (j = i; j < n; j++)
			if (strcmp(v[j].cls, v[i].cls) == 0)
				sel[count++] = &v[j];
		printf("%-24s %5zu lines %9.1f ns/parse\n", v[i].cls, count,
		       time_lines(ctx, sel, count, rounds));
	}
	for (i = 0; i < n; i++)
		sel[i] = &v[i];
	printf("%-24s %5zu lines %9.1f ns/parse\n", "mix", n, time_lines(ctx, sel, n, rounds));
	free(sel);
	gs1_encoder_free(ctx);
	for (i = 0; i < n; i++)
		free(v[i].arg);
	free(v);
	return 0;
}
