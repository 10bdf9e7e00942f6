/*
 * What the raw xs_wire test clients (close_peer.c, split_peer.c) share:
 * the message header of xen/io/xs_wire.h, mirrored so that they build
 * without libxen-dev, and a read of exactly n bytes.
 */
#ifndef XENEMU_TEST_PEER_H
#define XENEMU_TEST_PEER_H
#include <stddef.h>
#include <stdint.h>
#include <unistd.h>

struct xsd_sockmsg { uint32_t type, req_id, tx_id, len; }; /* xen/io/xs_wire.h */
#define XS_READ 2
#define XS_WRITE 11

/* 0 once n bytes were read, -1 at end of file or on an error. */
static inline int read_all(int fd, void *p, size_t n)
{
	char *c = p;
	while (n) {
		ssize_t r = read(fd, c, n);
		if (r <= 0) return -1;
		c += r;
		n -= r;
	}
	return 0;
}
#endif
