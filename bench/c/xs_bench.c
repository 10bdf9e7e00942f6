/*
 * xs_bench: a xenstore load generator linked with Debian's libxenstore
 * (libxen-dev: <xenstore.h>, -lxenstore), so that what is measured is the
 * daemon behind XENSTORED_PATH and the real client library, not a client
 * written in JavaScript. Built by bench/xenstored.ts with `cc -O2`.
 *
 *   xs_bench echo SOCKET WARMUP_MS SAMPLE_MS SAMPLES     raw xs_wire round trips
 *   xs_bench rw|tx|watch [--echo SOCKET] WARMUP_MS SAMPLE_MS SAMPLES
 *                                                       libxenstore operations
 *   xs_bench rw|tx|watch --versus SOCKET_A SOCKET_B WARMUP_MS SAMPLE_MS PAIRS
 *                                                       the same against two daemons
 *   xs_bench fill COUNT                                   COUNT node creations
 *
 * With --echo, every sample of the operation is followed by a sample of raw
 * round trips to the echo server at SOCKET (the baseline), so that both see
 * the same machine: on a shared machine the load of the moment moves both.
 *
 * With --versus, one connection to each daemon, both open throughout: a
 * warm-up on each, then PAIRS pairs of samples, one on A and one on B,
 * the order alternating pair by pair (A B, B A, A B, ...). A pair's two
 * samples are next to each other in time, so that the load of the moment
 * weighs on both alike; "samples" are A's, "baseline_samples" B's, pair by
 * pair.
 *
 * One line of JSON on stdout: {"mode":..., "samples":[[ops,seconds],...],
 * "baseline_samples":[...], "warmup_ops":n, "cpu_seconds":x}; cpu_seconds is
 * the client's own CPU during the operation's samples. Any failed operation
 * is fatal (exit 1, reason on stderr): a number measured over errors means
 * nothing.
 *
 * The client is single-threaded and synchronous, one request in flight, like
 * the tools that talk to xenstored (xenstore-write, xl). libxenstore starts a
 * reader thread at the first xs_watch; only the "watch" mode pays for it.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <xenstore.h>
#include <xen/io/xs_wire.h>

static void die(const char *what)
{
	fprintf(stderr, "xs_bench: %s: %s\n", what, strerror(errno));
	exit(1);
}

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double cpu_seconds(void)
{
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 +
	       (double)ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
}

/* ---- operations: each performs one counted unit of work ---------------- */

struct ctx {
	struct xs_handle *xs;
	int fd;                 /* echo: the raw socket */
	unsigned long tx_retries;
};

#define RW_KEYS 16

/* One write+read pair on keys cycling over /bench/rw/k0..k15. */
static void op_rw(struct ctx *c, unsigned long i)
{
	char path[32], val[32];
	unsigned int len;
	int n;

	snprintf(path, sizeof(path), "/bench/rw/k%lu", i % RW_KEYS);
	n = snprintf(val, sizeof(val), "v%lu", i);
	if (!xs_write(c->xs, XBT_NULL, path, val, n))
		die("xs_write");
	char *got = xs_read(c->xs, XBT_NULL, path, &len);
	if (!got)
		die("xs_read");
	if (len != (unsigned int)n || memcmp(got, val, n) != 0) {
		fprintf(stderr, "xs_bench: %s read back \"%.*s\", wrote \"%s\"\n", path, (int)len, got, val);
		exit(1);
	}
	free(got);
}

/* One committed transaction of two writes; EAGAIN retries are counted. */
static void op_tx(struct ctx *c, unsigned long i)
{
	char val[32];
	int n = snprintf(val, sizeof(val), "v%lu", i);

	for (;;) {
		xs_transaction_t t = xs_transaction_start(c->xs);
		if (t == XBT_NULL)
			die("xs_transaction_start");
		if (!xs_write(c->xs, t, "/bench/tx/a", val, n))
			die("xs_write (in transaction)");
		if (!xs_write(c->xs, t, "/bench/tx/b", val, n))
			die("xs_write (in transaction)");
		if (xs_transaction_end(c->xs, t, false))
			return;
		if (errno != EAGAIN)
			die("xs_transaction_end");
		c->tx_retries++;
	}
}

/* One write of /bench/w/x and the wait for its watch event. */
static void op_watch(struct ctx *c, unsigned long i)
{
	char val[32];
	int n = snprintf(val, sizeof(val), "v%lu", i);
	unsigned int num;

	if (!xs_write(c->xs, XBT_NULL, "/bench/w/x", val, n))
		die("xs_write");
	for (;;) {
		char **ev = xs_read_watch(c->xs, &num);
		if (!ev)
			die("xs_read_watch");
		bool mine = strcmp(ev[XS_WATCH_PATH], "/bench/w/x") == 0 &&
			    strcmp(ev[XS_WATCH_TOKEN], "bench") == 0;
		free(ev);
		if (mine)
			return;
	}
}

/* One raw round trip: an XS_READ frame out, the same bytes back from an echo
 * server. The floor under any xenstored request served by one Node process. */
static void op_echo(struct ctx *c, unsigned long i)
{
	static const char payload[] = "/bench/rw/k0";
	char buf[sizeof(struct xsd_sockmsg) + sizeof(payload)];
	struct xsd_sockmsg hdr = {
		.type = XS_READ, .req_id = (uint32_t)i, .tx_id = 0, .len = sizeof(payload),
	};
	size_t total = sizeof(buf), got = 0;

	memcpy(buf, &hdr, sizeof(hdr));
	memcpy(buf + sizeof(hdr), payload, sizeof(payload));
	if (write(c->fd, buf, total) != (ssize_t)total)
		die("write");
	while (got < total) {
		ssize_t r = read(c->fd, buf + got, total - got);
		if (r <= 0) {
			if (r == 0)
				errno = ECONNRESET;
			die("read");
		}
		got += (size_t)r;
	}
	if (memcmp(buf, &hdr, sizeof(hdr)) != 0) {
		fprintf(stderr, "xs_bench: echo returned another header\n");
		exit(1);
	}
}

/* ---- timing ---------------------------------------------------------------- */

typedef void (*op_fn)(struct ctx *, unsigned long);

/* Runs op for `seconds`; returns how many ran and sets *secs to the time taken. */
static unsigned long run_for(op_fn op, struct ctx *c, unsigned long *i, double seconds, double *secs)
{
	unsigned long n = 0;
	double start = now(), end = start + seconds, t;

	while ((t = now()) < end) {
		op(c, (*i)++);
		n++;
	}
	*secs = t - start;
	return n;
}

static void print_samples(const char *key, unsigned long *ops, double *secs, int samples)
{
	printf(",\"%s\":[", key);
	for (int s = 0; s < samples; s++)
		printf("%s[%lu,%.6f]", s ? "," : "", ops[s], secs[s]);
	printf("]");
}

/* Warm-up, then `samples` windows of op, each followed by one of base (if any). */
static void run_timed(const char *mode, op_fn op, op_fn base, struct ctx *c,
		      double warmup, double sample, int samples)
{
	unsigned long i = 0, bi = 0, warm, ops[samples], bops[samples];
	double secs[samples], bsecs[samples], cpu = 0, t;

	warm = run_for(op, c, &i, warmup, &t);
	if (base)
		run_for(base, c, &bi, warmup, &t);
	for (int s = 0; s < samples; s++) {
		double cpu0 = cpu_seconds();
		ops[s] = run_for(op, c, &i, sample, &secs[s]);
		cpu += cpu_seconds() - cpu0;
		if (base)
			bops[s] = run_for(base, c, &bi, sample, &bsecs[s]);
	}
	printf("{\"mode\":\"%s\",\"warmup_ops\":%lu", mode, warm);
	print_samples("samples", ops, secs, samples);
	if (base)
		print_samples("baseline_samples", bops, bsecs, samples);
	printf(",\"cpu_seconds\":%.4f,\"tx_retries\":%lu}\n", cpu, c->tx_retries);
}

/* Warm-up on each, then `pairs` pairs of samples of op on a and on b, in alternating order. */
static void run_versus(const char *mode, op_fn op, struct ctx *a, struct ctx *b,
		       double warmup, double sample, int pairs)
{
	unsigned long ia = 0, ib = 0, aops[pairs], bops[pairs];
	double asecs[pairs], bsecs[pairs], cpu = 0, t;

	run_for(op, a, &ia, warmup, &t);
	run_for(op, b, &ib, warmup, &t);
	for (int s = 0; s < pairs; s++) {
		double cpu0;
		if (s % 2)
			bops[s] = run_for(op, b, &ib, sample, &bsecs[s]);
		cpu0 = cpu_seconds();
		aops[s] = run_for(op, a, &ia, sample, &asecs[s]);
		cpu += cpu_seconds() - cpu0;
		if (s % 2 == 0)
			bops[s] = run_for(op, b, &ib, sample, &bsecs[s]);
	}
	printf("{\"mode\":\"%s\"", mode);
	print_samples("samples", aops, asecs, pairs);
	print_samples("baseline_samples", bops, bsecs, pairs);
	printf(",\"cpu_seconds\":%.4f,\"tx_retries\":%lu,\"baseline_tx_retries\":%lu}\n",
	       cpu, a->tx_retries, b->tx_retries);
}

static struct xs_handle *open_xs(void)
{
	/* xs_open(0) connects to $XENSTORED_PATH when it is set. */
	struct xs_handle *xs = xs_open(0);
	if (!xs)
		die("xs_open (is XENSTORED_PATH set?)");
	return xs;
}

static int open_echo(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0)
		die("socket");
	if (strlen(path) >= sizeof(sa.sun_path)) {
		errno = ENAMETOOLONG;
		die(path);
	}
	strcpy(sa.sun_path, path);
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		die(path);
	return fd;
}

static void fill(struct ctx *c, unsigned long count)
{
	char path[64], val[32];
	double t0 = now(), cpu0 = cpu_seconds();

	for (unsigned long i = 0; i < count; i++) {
		snprintf(path, sizeof(path), "/bench/mem/%lu/%lu", i / 1000, i);
		int n = snprintf(val, sizeof(val), "value-%lu", i);
		if (!xs_write(c->xs, XBT_NULL, path, val, n))
			die("xs_write");
	}
	printf("{\"mode\":\"fill\",\"samples\":[[%lu,%.6f]],\"cpu_seconds\":%.4f}\n",
	       count, now() - t0, cpu_seconds() - cpu0);
}

/* A watch on /bench/w, its initial event drained. */
static void watch_setup(struct xs_handle *xs)
{
	unsigned int num;

	if (!xs_watch(xs, "/bench/w", "bench"))
		die("xs_watch");
	/* A new watch fires once at once ("simplifies clients"): drain it. */
	char **ev = xs_read_watch(xs, &num);
	if (!ev)
		die("xs_read_watch (initial event)");
	free(ev);
}

static op_fn op_of(const char *mode)
{
	if (strcmp(mode, "rw") == 0)
		return op_rw;
	if (strcmp(mode, "tx") == 0)
		return op_tx;
	if (strcmp(mode, "watch") == 0)
		return op_watch;
	return NULL;
}

/* xs_open(0) on `socket` (libxenstore reads XENSTORED_PATH at each open). */
static struct xs_handle *open_xs_at(const char *socket)
{
	if (setenv("XENSTORED_PATH", socket, 1) != 0)
		die("setenv");
	return open_xs();
}

static void usage(void)
{
	fprintf(stderr,
		"usage: xs_bench echo SOCKET WARMUP_MS SAMPLE_MS SAMPLES\n"
		"       xs_bench rw|tx|watch [--echo SOCKET] WARMUP_MS SAMPLE_MS SAMPLES\n"
		"       xs_bench rw|tx|watch --versus SOCKET_A SOCKET_B WARMUP_MS SAMPLE_MS PAIRS\n"
		"       xs_bench fill COUNT\n");
	exit(2);
}

int main(int argc, char **argv)
{
	struct ctx c = { .fd = -1 };
	const char *mode;
	char **timing;

	/* Die with the bench runner, however it dies. */
	prctl(PR_SET_PDEATHSIG, SIGKILL);

	if (argc < 2)
		usage();
	mode = argv[1];

	if (strcmp(mode, "fill") == 0) {
		if (argc != 3)
			usage();
		c.xs = open_xs();
		fill(&c, strtoul(argv[2], NULL, 10));
		xs_close(c.xs);
		return 0;
	}

	if (argc == 8 && strcmp(argv[2], "--versus") == 0) {
		struct ctx b = { .fd = -1 };
		op_fn op = op_of(mode);
		double warmup = atof(argv[5]) / 1e3, sample = atof(argv[6]) / 1e3;
		int pairs = atoi(argv[7]);
		if (!op || sample <= 0 || pairs <= 0 || pairs > 1000)
			usage();
		c.xs = open_xs_at(argv[3]);
		b.xs = open_xs_at(argv[4]);
		if (op == op_watch) {
			watch_setup(c.xs);
			watch_setup(b.xs);
		}
		run_versus(mode, op, &c, &b, warmup, sample, pairs);
		xs_close(c.xs);
		xs_close(b.xs);
		return 0;
	}

	if (strcmp(mode, "echo") == 0) {
		if (argc != 6)
			usage();
		c.fd = open_echo(argv[2]);
		timing = argv + 3;
	} else {
		timing = argv + 2;
		if (argc == 7 && strcmp(argv[2], "--echo") == 0) {
			c.fd = open_echo(argv[3]);
			timing = argv + 4;
		} else if (argc != 5) {
			usage();
		}
		c.xs = open_xs();
	}
	double warmup = atof(timing[0]) / 1e3, sample = atof(timing[1]) / 1e3;
	int samples = atoi(timing[2]);
	if (sample <= 0 || samples <= 0 || samples > 1000)
		usage();
	op_fn base = c.fd >= 0 ? op_echo : NULL;

	if (strcmp(mode, "echo") == 0) {
		run_timed(mode, op_echo, NULL, &c, warmup, sample, samples);
		close(c.fd);
		return 0;
	}
	if (strcmp(mode, "rw") == 0) {
		run_timed(mode, op_rw, base, &c, warmup, sample, samples);
	} else if (strcmp(mode, "tx") == 0) {
		run_timed(mode, op_tx, base, &c, warmup, sample, samples);
	} else if (strcmp(mode, "watch") == 0) {
		watch_setup(c.xs);
		run_timed(mode, op_watch, base, &c, warmup, sample, samples);
	} else {
		usage();
	}
	if (c.fd >= 0)
		close(c.fd);
	xs_close(c.xs);
	return 0;
}
