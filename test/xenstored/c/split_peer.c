/*
 * split_peer: one connection to xenstored writing each request in pieces
 * with gaps between them, as a slow or hostile client may: the header cut
 * inside its length field, then the rest of it, the payload's path, then its
 * value, each after 0, 10, 200 or 2000 us. The
 * daemon's busy poll completes a frame it has the start of for up to 50 us,
 * then leaves the rest to libuv (processes/dom0/xenstored/index.ts,
 * serveDirect): either way every request must get its own reply, and every
 * value must read back as written. Built by test/xenstored/direct_io.test.ts.
 *
 *   split_peer SOCKET N     prints "split N" when all N write+read pairs were exact
 */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "peer.h"

static const long gaps_us[] = { 0, 10, 200, 2000 };

static void pause_us(long us)
{
	struct timespec t0, t;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	do clock_gettime(CLOCK_MONOTONIC, &t);
	while ((t.tv_sec - t0.tv_sec) * 1000000L + (t.tv_nsec - t0.tv_nsec) / 1000 < us);
}

static void put(int fd, const void *p, size_t n)
{
	if (n && write(fd, p, n) != (ssize_t)n) { perror("split_peer: write"); exit(1); }
}

/* One request, its pieces `gap` us apart; returns the reply's payload length into body. */
static uint32_t call(int fd, uint32_t type, uint32_t id, const char *path, const char *val, long gap, char *body)
{
	size_t plen = strlen(path) + 1, vlen = val ? strlen(val) : 0;
	struct xsd_sockmsg h = { type, id, 0, (uint32_t)(plen + vlen) };
	put(fd, &h, 14);
	pause_us(gap);
	put(fd, (char *)&h + 14, sizeof h - 14);
	pause_us(gap);
	put(fd, path, plen);
	pause_us(gap);
	put(fd, val, vlen);
	struct xsd_sockmsg r;
	if (read_all(fd, &r, sizeof r) < 0 || r.len > 4096 || read_all(fd, body, r.len) < 0) {
		fprintf(stderr, "split_peer: no reply to request %u\n", id);
		exit(1);
	}
	if (r.req_id != id || r.type != type) {
		fprintf(stderr, "split_peer: request %u (type %u) got reply %u (type %u)\n", id, type, r.req_id, r.type);
		exit(1);
	}
	return r.len;
}

int main(int argc, char **argv)
{
	if (argc != 3) { fprintf(stderr, "usage: split_peer SOCKET N\n"); return 2; }
	int n = atoi(argv[2]);
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	strncpy(a.sun_path, argv[1], sizeof a.sun_path - 1);
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof a) < 0) { perror("split_peer: connect"); return 1; }
	char path[64], val[64], body[4097];
	for (int i = 0; i < n; i++) {
		long gap = gaps_us[i % 4];
		snprintf(path, sizeof path, "/split/k%d", i % 8);
		snprintf(val, sizeof val, "value-%d-%ld", i, gap);
		call(fd, XS_WRITE, 2 * i, path, val, gap, body);
		uint32_t len = call(fd, XS_READ, 2 * i + 1, path, NULL, gaps_us[(i + 1) % 4], body);
		if (len != strlen(val) || memcmp(body, val, len) != 0) {
			body[len] = 0;
			fprintf(stderr, "split_peer: %s read back as \"%s\", not \"%s\"\n", path, body, val);
			return 1;
		}
	}
	printf("split %d\n", n);
	return 0;
}
