/*
 * close_peer: N connections to xenstored, each one XS_READ of "/" answered,
 * then closed at once, microseconds after the reply: the end of file lands
 * inside the daemon's busy poll, which reads it on the descriptor
 * (processes/dom0/xenstored/index.ts, serveDirect) and must still let the
 * connection go. Built by test/xenstored/direct_io.test.ts with cc.
 *
 *   close_peer SOCKET N     prints "closed N" when every request was answered
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "peer.h"

int main(int argc, char **argv)
{
	if (argc != 3) { fprintf(stderr, "usage: close_peer SOCKET N\n"); return 2; }
	int n = atoi(argv[2]);
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	strncpy(a.sun_path, argv[1], sizeof a.sun_path - 1);
	for (int i = 0; i < n; i++) {
		int fd = socket(AF_UNIX, SOCK_STREAM, 0);
		if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof a) < 0) { perror("connect"); return 1; }
		char req[sizeof(struct xsd_sockmsg) + 2];
		struct xsd_sockmsg h = { XS_READ, (uint32_t)i, 0, 2 };
		memcpy(req, &h, sizeof h);
		memcpy(req + sizeof h, "/", 2);
		if (write(fd, req, sizeof req) != (ssize_t)sizeof req) { perror("write"); return 1; }
		struct xsd_sockmsg r;
		char body[4096];
		if (read_all(fd, &r, sizeof r) < 0 || r.len > sizeof body || read_all(fd, body, r.len) < 0) {
			fprintf(stderr, "close_peer: no reply on connection %d\n", i);
			return 1;
		}
		if (r.req_id != (uint32_t)i || r.type != XS_READ) { fprintf(stderr, "close_peer: bad reply %u/%u\n", r.type, r.req_id); return 1; }
		close(fd);
	}
	printf("closed %d\n", n);
	return 0;
}
