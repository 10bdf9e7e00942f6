/*
 * xc_rt: a hypercall's round trip through xenemu's privcmd library, and a
 * raw round trip on the same kind of socket to the same hypervisor
 * (bench/xenctrl.ts). Built with `cc -O2 ... -lxenctrl`.
 *
 *   xc_rt getinfo DOMID COUNT      COUNT x xc_domain_getinfo(DOMID, 1), run under the
 *                                  library (LD_PRELOAD, XENEMU_HOST_DIR)
 *   xc_rt raw SOCKET BYTES COUNT   COUNT x a PING frame of BYTES bytes to the privcmd socket and
 *                                  its PONG (shared/wire/privcmd.ts), without the library
 *
 * Each call is timed alone (CLOCK_MONOTONIC); one JSON line on stdout:
 * {"mode":..., "count":n, "p50_us":x, "p90_us":x, "p99_us":x, "mean_us":x}.
 * The first 10% of the calls warm up and are not counted.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>
#include <xenctrl.h>

#define PC_PING 6
#define PC_PONG 106

static void die(const char *what)
{
	fprintf(stderr, "xc_rt: %s: %s\n", what, strerror(errno));
	exit(1);
}

static double now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

static int cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static void report(const char *mode, double *t, int n)
{
	int warm = n / 10, m = n - warm;
	double *s = t + warm, sum = 0;

	qsort(s, m, sizeof(*s), cmp);
	for (int i = 0; i < m; i++)
		sum += s[i];
	printf("{\"mode\":\"%s\",\"count\":%d,\"p50_us\":%.2f,\"p90_us\":%.2f,\"p99_us\":%.2f,\"mean_us\":%.2f}\n",
	       mode, m, s[m / 2], s[m * 9 / 10], s[m * 99 / 100], sum / m);
}

static void getinfo(uint32_t domid, int n)
{
	xc_interface *xch = xc_interface_open(NULL, NULL, 0);
	double *t = malloc(sizeof(double) * n);
	xc_dominfo_t info;

	if (!xch || !t)
		die("xc_interface_open");
	for (int i = 0; i < n; i++) {
		double t0 = now_us();

		if (xc_domain_getinfo(xch, domid, 1, &info) != 1 || info.domid != domid)
			die("xc_domain_getinfo");
		t[i] = now_us() - t0;
	}
	report("getinfo", t, n);
	xc_interface_close(xch);
}

static int recv_all(int fd, char *p, size_t len)
{
	while (len) {
		ssize_t r = recv(fd, p, len, 0);

		if (r <= 0) {
			if (r < 0 && errno == EINTR)
				continue;
			return -1;
		}
		p += r;
		len -= (size_t)r;
	}
	return 0;
}

static void raw(const char *path, int bytes, int n)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	double *t = malloc(sizeof(double) * n);
	char *out = calloc(1, bytes), *in = malloc(bytes);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0 || !t || !out || !in || bytes < 8 || strlen(path) >= sizeof(sa.sun_path))
		die("setup");
	strcpy(sa.sun_path, path);
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)))
		die("connect");
	((uint32_t *)out)[0] = (uint32_t)bytes;
	((uint32_t *)out)[1] = PC_PING;
	for (int i = 0; i < n; i++) {
		double t0 = now_us();

		if (send(fd, out, bytes, MSG_NOSIGNAL) != bytes || recv_all(fd, in, bytes) || ((uint32_t *)in)[1] != PC_PONG)
			die("ping");
		t[i] = now_us() - t0;
	}
	report("raw", t, n);
	close(fd);
}

int main(int argc, char **argv)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc == 4 && !strcmp(argv[1], "getinfo"))
		getinfo((uint32_t)strtoul(argv[2], NULL, 0), atoi(argv[3]));
	else if (argc == 5 && !strcmp(argv[1], "raw"))
		raw(argv[2], atoi(argv[3]), atoi(argv[4]));
	else {
		fprintf(stderr, "usage: xc_rt getinfo DOMID COUNT | xc_rt raw SOCKET BYTES COUNT\n");
		return 2;
	}
	return 0;
}
